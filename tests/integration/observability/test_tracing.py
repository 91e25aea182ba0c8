"""Optional OpenTelemetry spans: one per search stage when enabled, none when off."""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from consolidation.dispatch import build_service
from memsvc.config.observability import TracingConfig
from memsvc.observability import tracing
from memsvc.schemas import MemoryCreate, SearchRequest
from tests.conftest import make_settings, new_tenant

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))


def test_search_stages_are_spans(tmp_path: Path) -> None:
    trace.set_tracer_provider(_provider)  # the host program's provider (no endpoint set)
    off = build_service(make_settings(tmp_path / "off"))
    try:
        t = new_tenant(off)
        off.memories.add(t.tenant_id, [MemoryCreate(text="tea at noon")], actor="test")
        off.recall.search(t.tenant_id, SearchRequest(query="tea"))
        assert not tracing.enabled()
        assert _exporter.get_finished_spans() == ()
    finally:
        off.close()
    on = build_service(make_settings(tmp_path / "on", tracing={"enabled": True}))
    try:
        assert tracing.enabled()
        t = new_tenant(on)
        on.memories.add(t.tenant_id, [MemoryCreate(text="tea at noon")], actor="test")
        on.recall.search(t.tenant_id, SearchRequest(query="tea"))
        names = [s.name for s in _exporter.get_finished_spans()]
        for stage in ("embed", "candidates", "retrieve", "fuse", "materialise"):
            assert f"search.{stage}" in names
    finally:
        on.close()
        tracing.configure_tracing(TracingConfig())
        assert not tracing.enabled()
