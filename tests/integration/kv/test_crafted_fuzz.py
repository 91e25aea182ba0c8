"""Hypothesis: any edit of a valid container (a manifest field, a tensor entry, data bytes) is
either refused with a FormatError by the checks an upload runs, or gives a container that
decodes, re-encodes and composes. No other error, whatever the edit."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kv_cartridges.checks import check_values
from kv_cartridges.format import FormatError, KVContainer, LayerReader, read_manifest
from kv_cartridges.limits import ContainerLimits
from kv_cartridges.quant import PRESETS, QuantSpec
from tests.integration.kv.crafted import container, craft, set_model

LIMITS = ContainerLimits(
    max_header_bytes=1 << 20, max_layers=8, max_batch=4, max_kv_heads=8, max_head_dim=64,
    max_tokens=4096, max_start_position=2**31 - 1, max_group_size=256, max_sink_tokens=64,
    max_window_tokens=256,
)  # fmt: skip
BASES = {
    "raw": container(T=24, token_ids=list(range(24))),
    "packed": container(QuantSpec(group_size=8, window_tokens=3), T=24),
}
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, 2, 3, 4, 8, 16, 24, 64, -1, 2**31, 10**6])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=6,
)  # fmt: skip


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (dict keys and list indexes), the root excluded."""
    if not isinstance(value, (dict, list)):
        return []
    out: list[tuple] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in list(items)[:12]:  # the token chain's hashes need not all be walked
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


def _edit(target: Any, path: tuple, value: Any, delete: bool) -> None:
    for key in path[:-1]:
        target = target[key]
    if delete and isinstance(target, dict):
        target.pop(path[-1])
    else:
        target[path[-1]] = value


@st.composite
def edited(draw: st.DrawFn) -> bytes:
    base = BASES[draw(st.sampled_from(sorted(BASES)))]
    where = draw(st.sampled_from(["manifest", "entries", "data"]))
    if where == "data":
        spots = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6))

        def flip(buffer: bytearray, _: dict[str, Any]) -> None:
            for at, byte in spots:
                buffer[at % len(buffer)] = byte

        return craft(base, data=flip)
    value, delete = draw(JSON), draw(st.booleans())
    refresh_id = draw(st.booleans())

    def change(doc: dict[str, Any]) -> None:
        path = draw(st.sampled_from(_paths(doc)))
        _edit(doc, path, value, delete)
        if where == "manifest" and refresh_id and isinstance(doc.get("model"), dict):
            with contextlib.suppress(TypeError, ValueError):
                set_model(doc)  # keep model_id in step, so deeper checks are reached

    if where == "manifest":
        return craft(base, manifest=change)
    return craft(base, entries=change)


def _usable(path: Path) -> None:
    """What the server does later with a stored container: decode every layer, and encode it
    again (consolidation's re-encode, or compose with the cache's own spec)."""
    with LayerReader(path) as reader:
        layers = [reader[i] for i in range(len(reader))]
        m = reader.manifest
    for k, v in layers:
        assert bool(torch.isfinite(k).all() and torch.isfinite(v).all())
    # refused with a reason is fine: compose answers 422, consolidation keeps the cache as is
    with contextlib.suppress(FormatError):
        spec = m.spec or PRESETS["compact"]
        KVContainer.build(layers, m.model, spec=spec, origin=m.origin,
                          start_position=m.start_position)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=edited())
def test_any_edit_is_refused_or_usable(
    body: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        manifest = read_manifest(body, limits=LIMITS, max_bytes=1 << 20)
    except FormatError:
        return
    path = tmp_path_factory.mktemp("fuzz") / "c"
    path.write_bytes(body)
    try:
        check_values(path, manifest)
    except FormatError:
        return
    _usable(path)


def test_the_bases_are_usable(tmp_path: Path) -> None:
    for name, body in BASES.items():
        manifest = read_manifest(body, limits=LIMITS)
        (tmp_path / name).write_bytes(body)
        check_values(tmp_path / name, manifest)
        _usable(tmp_path / name)
        assert json.loads(json.dumps(manifest.to_dict()))["n_tokens"] == 24
