"""Optional OpenTelemetry spans (``pip install 'memsvc[otel]'``, ``MEMSVC_TRACING__ENABLED``).

Off by default, and then nothing of OpenTelemetry is imported: :func:`span` is a no-op
context manager. :func:`configure_tracing` (called by the service at start) imports the API
and, with ``otlp_endpoint`` set, installs an SDK tracer provider exporting over OTLP/HTTP; a
host program (or a test) may install its own provider instead and leave the endpoint empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from memsvc.config.observability import TracingConfig

__all__ = ["configure_tracing", "enabled", "span"]

_tracer: Any = None


def enabled() -> bool:
    return _tracer is not None


def configure_tracing(config: TracingConfig) -> None:
    """Turn spans on (or off) for this process as ``config`` says."""
    global _tracer
    if not config.enabled:
        _tracer = None
        return
    from opentelemetry import trace

    if config.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(config.otlp_endpoint)))
        trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("memsvc")


@contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[None]:
    with _tracer.start_as_current_span(name, attributes=attributes):
        yield


def span(name: str, **attributes: Any) -> Any:
    """A span named ``name`` when tracing is on, else nothing."""
    if _tracer is None:
        return nullcontext()
    return _span(name, attributes)
