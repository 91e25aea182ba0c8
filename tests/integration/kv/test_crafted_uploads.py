"""Crafted KV containers and specs over REST: every one is a 4xx JSON error naming the problem,
changes nothing (no row, no blob, no temporary file), and a claim costs nothing to refuse."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kv_cartridges.quant import QuantSpec
from memsvc.service import MemoryService
from tests.conftest import TenantKey
from tests.integration.kv.crafted import container, craft, put_float, set_model

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

OCTET = {"Content-Type": "application/octet-stream"}
RAW = container()
PACKED = container(QuantSpec())
Edit = Callable[[dict[str, Any]], object]


def _state(service: MemoryService, tenant: TenantKey) -> tuple[int, list[str]]:
    root = service.deps.blobs.root  # type: ignore[attr-defined]
    return service.kv.list(tenant.tenant_id).count, sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
    )


def _refused(
    client, service, tenant, answer_of: Callable[[], Any], message: str, case: str = ""
) -> None:
    before = _state(service, tenant)
    answer = answer_of()
    assert 400 <= answer.status_code < 500, (case, answer.text)
    error = answer.json()["error"]
    assert set(error) >= {"code", "message", "field"}, (case, error)
    assert message in error["message"], (case, error)
    assert _state(service, tenant) == before, case


def _push(client: TestClient, tenant: TenantKey, body: bytes, **params: str):
    return client.post(
        "/v1/cartridges", content=body, params=params, headers=tenant.headers | OCTET
    )


def _push_refused(client, service, tenant, case: str, body: bytes, message: str, **params) -> None:
    _refused(client, service, tenant, lambda: _push(client, tenant, body, **params), message, case)


def _model(**changes: Any) -> Edit:
    return lambda m: set_model(m, **changes)


def _field(name: str, value: Any) -> Edit:
    return lambda m: m.__setitem__(name, value)


CLAIMS = {  # (manifest edit, what the error names); each limit is MEMSVC_KV__MAX_*
    "layers": (_model(num_layers=10**6), "model.num_layers is 1000000; the limit is 512"),
    "layers in bounds, not in the file": (_model(num_layers=500), "claims 500 layers"),
    "heads": (_model(num_kv_heads=10**9), "model.num_kv_heads is 1000000000"),
    "head_dim": (_model(head_dim=10**9), "model.head_dim is 1000000000"),
    "tokens": (_field("n_tokens", 10**12), "n_tokens is 1000000000000; the limit is 262144"),
    "batch": (_field("batch", 10**6), "batch is 1000000; the limit is 64"),
    "start": (_field("start_position", 2**40), "start_position is 1099511627776"),
    "start + tokens": (_field("start_position", 2**31 - 5), "start_position + n_tokens - 1"),
}


def test_claims_are_bounded_before_any_allocation(client, service, tenant) -> None:
    small = container(T=8)
    for case, (edit, message) in CLAIMS.items():
        body = craft(small, manifest=edit)
        assert len(body) < 6000
        tracemalloc.start()
        try:
            _push_refused(client, service, tenant, case, body, message)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 << 20, f"{peak / 2**20:.1f} MiB allocated to refuse {case}"


def _entry(name: str, **changes: Any) -> Callable[[dict[str, Any]], object]:
    return lambda h: h[name].update(changes)


def _swap_offsets(h: dict[str, Any]) -> None:
    h["layers.0.k"]["data_offsets"], h["layers.0.v"]["data_offsets"] = (
        h["layers.0.v"]["data_offsets"],
        [0, 1],
    )


OFFSETS = {
    "bytes != shape x dtype": (_entry("layers.0.k", shape=[1, 2, 79, 16]), "needs 10112"),
    "dtype": (_entry("layers.1.v", dtype="F64"), "dtype 'F64'"),
    "overlap": (_swap_offsets, "data_offsets [0, 1] cover 1 bytes"),
    "beyond the file": (_entry("layers.1.v", data_offsets=[30720, 50960]), "cover 20240 bytes"),
    "gap": (lambda h: h["layers.1.v"].update(data_offsets=[30724, 40964]), "(gap)"),
    "negative": (_entry("layers.0.k", data_offsets=[-4, 10236]), "bad data_offsets"),
    "not a list": (_entry("layers.0.k", data_offsets="0-10240"), "bad data_offsets"),
    "shape rank": (_entry("layers.0.k", shape=[1] * 9), "not a list of up to 4 sizes"),
    "extra key": (_entry("layers.0.k", extra=1), "exactly {dtype, shape, data_offsets}"),
    "entry not an object": (lambda h: h.__setitem__("layers.0.k", [1]), "an entry is exactly"),
    "extra tensor": (
        lambda h: h.__setitem__("zz", {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}),
        "unexpected ['zz']",
    ),
}


def test_data_offsets_must_tile_the_file(client, service, tenant) -> None:
    for case, (edit, message) in OFFSETS.items():
        body = craft(RAW, entries=edit)
        _push_refused(client, service, tenant, case, body, message)


def _layer(i: int, **changes: Any) -> Edit:
    return lambda m: m["layers"][i].update(changes)


def _codec_spec(**changes: Any) -> Edit:
    return lambda m: m["codec"]["spec"].update(changes)


def _raw_header(header: bytes) -> bytes:
    return len(header).to_bytes(8, "little") + header


MANIFESTS = {  # the 500s of issue 16, and their kin
    "__metadata__ not an object": (_raw_header(b'{"__metadata__": [1, 2]}'), "no 'memsvc.kv'"),
    "manifest not a string": (
        _raw_header(b'{"__metadata__": {"memsvc.kv": {"format": "memsvc.kv"}}}'),
        "metadata values must be strings",
    ),
    "manifest not JSON": (_raw_header(b'{"__metadata__": {"memsvc.kv": "{"}}'), "manifest:"),
    "header nested deep": (_raw_header(b"[" * 100_000 + b"]" * 100_000), "not JSON"),
    "codec without spec": (craft(PACKED, manifest=lambda m: m["codec"].pop("spec")), "exactly"),
    "raw codec with spec": (
        craft(RAW, manifest=_field("codec", {"name": "raw", "spec": {}})),
        "exactly the fields ['name']",
    ),
    "spec seed a string": (craft(PACKED, manifest=_codec_spec(seed="x")), "seed='x'"),
    "spec seed negative": (craft(PACKED, manifest=_codec_spec(seed=-1)), "seed=-1"),
    "spec seed 2**64": (craft(PACKED, manifest=_codec_spec(seed=2**64)), "seed=1844"),
    "spec bits 4.0": (craft(PACKED, manifest=_codec_spec(k_bits=4.0)), "k_bits=4.0"),
    "spec rotate 'yes'": (craft(PACKED, manifest=_codec_spec(rotate_k="yes")), "rotate_k"),
    "spec not an object": (
        craft(PACKED, manifest=_field("codec", {"name": "kvquant", "spec": [4]})),
        "JSON object",
    ),
    "spec group 10**9": (craft(PACKED, manifest=_codec_spec(group_size=10**9)), "group_size"),
    "layer header not an object": (
        craft(PACKED, manifest=lambda m: m["layers"].__setitem__(0, 7)),
        "layer 0: the header is not an object",
    ),
    "layer shape floats": (craft(PACKED, manifest=_layer(0, shape=[1.0, 2, 80, 16])), "shape"),
    "layer spec differs": (
        craft(PACKED, manifest=_layer(1, spec=QuantSpec(k_bits=8).to_dict())),
        "layer 1 header spec differs",
    ),
    "layer sink beyond": (craft(PACKED, manifest=_layer(0, sink=81)), "sink/window 81/0"),
    "layer key_rope start": (
        craft(PACKED, manifest=_layer(0, key_rope={"start": 5, "pairs": 8})),
        "key_rope starts at 5",
    ),
    "layer version": (craft(PACKED, manifest=_layer(0, version=9)), "of version"),
    "model fields": (craft(RAW, manifest=_model(num_layers=-2)), "must be positive"),
    "model_id": (craft(RAW, manifest=_field("model_id", "0" * 32)), "does not match"),
    "dtype": (craft(RAW, manifest=_field("dtype", "int8")), "dtype 'int8'"),
    "origin not an object": (craft(RAW, manifest=_field("origin", [1])), "origin"),
    "token chain length": (
        craft(RAW, manifest=_field("token_chain", {"chunk_tokens": 64, "hashes": []})),
        "token_chain has 0 hashes",
    ),
    "token chain chunk": (
        craft(RAW, manifest=_field("token_chain", {"chunk_tokens": True, "hashes": []})),
        "chunk_tokens must be a positive integer",
    ),
    "NaN in the manifest": (
        craft(RAW, manifest=lambda m: m["model"]["rope"].update(rope_theta=float("nan"))),
        "NaN is not JSON",
    ),
    "header over the limit": (_raw_header(b" " * (5 << 20)), "exceeds 4194304"),
}


def test_malformed_headers_are_422(client, service, tenant) -> None:
    for case, (body, message) in MANIFESTS.items():
        _push_refused(client, service, tenant, case, body, message)


VALUES = {  # structurally sound, but nothing the server could decode or re-encode
    "raw NaN": (RAW, "layers.1.v", float("nan"), "layer 1: v decodes to nan"),
    "raw inf": (RAW, "layers.0.k", float("inf"), "layer 0: k decodes to inf"),
    "raw beyond fp16": (RAW, "layers.0.v", 1e6, "within +-65504"),
    "scale NaN": (PACKED, "layers.1.k.scale", float("nan"), "layer 1: k decodes to nan"),
    "zero inf": (PACKED, "layers.0.v.zero", float("inf"), "layer 0: v decodes to"),
    "sink inf": (PACKED, "layers.0.k.sink", float("inf"), "layer 0: k decodes to inf"),
    "rope_freq NaN": (PACKED, "layers.0.k.rope_freq", float("nan"), "does not decode"),
}


def _zero_sign(buffer: bytearray, header: dict[str, Any]) -> None:
    buffer[header["layers.0.v.signs"]["data_offsets"][0]] = 0


def test_values_must_decode(client, service, tenant) -> None:
    for case, (base, name, value, message) in VALUES.items():
        body = craft(base, data=lambda b, h, name=name, value=value: put_float(b, h, name, value))
        _push_refused(client, service, tenant, case, body, message)
    body = craft(PACKED, data=_zero_sign)
    _push_refused(client, service, tenant, "signs", body, "+1/-1")


SPECS = {  # ?spec= (a preset or QuantSpec / LayerwiseSpec JSON)
    "seed a string": ({"seed": "x"}, "seed='x'"),
    "seed 2**64": ({"seed": 2**64}, "seed=18446744073709551616"),
    "seed negative": ({"seed": -3}, "seed=-3"),
    "group 10**9": ({"group_size": 10**9}, "spec.group_size is 1000000000; the limit is 4096"),
    "sinks 10**9": ({"sink_tokens": 10**9}, "spec.sink_tokens is 1000000000"),
    "window 10**9": ({"window_tokens": 10**9}, "spec.window_tokens is 1000000000"),
    "bits true": ({"k_bits": True}, "k_bits=True"),
    "unknown field": ({"bits": 4}, "unknown QuantSpec fields ['bits']"),
    "override of a layer the model lacks": (
        {"base": {}, "layers": {"7": {"k_bits": 8}}},
        "overrides for layers [7]; there are 2",
    ),
    "override key": ({"base": {}, "layers": {"x": {}}}, "layer key 'x'"),
    "override not an object": ({"base": {}, "layers": {"0": 3}}, "an override is an object"),
    "layers a list": ({"base": {}, "layers": [1]}, "LayerwiseSpec"),
    "not JSON": ("{nope", "not JSON"),
    "nested deep": ("{" + '"a":{' * 3000, "not JSON"),
}


def test_specs_are_bounded(client, service, tenant) -> None:
    for case, (spec, message) in SPECS.items():
        text = spec if isinstance(spec, str) else json.dumps(spec)
        _push_refused(client, service, tenant, case, RAW, message, spec=text)


def test_session_kv_needs_its_hash_chain_and_bounds_apply(client, service, tenant) -> None:
    origin = {"kind": "session", "session_id": "s1"}
    headers = tenant.headers | OCTET
    unchained = container(origin=origin)
    _refused(
        client,
        service,
        tenant,
        lambda: client.put("/v1/sessions/s1/kv", content=unchained, headers=headers),
        "needs its token ids' hash chain",
    )
    chained = container(origin=origin, token_ids=list(range(80)))
    huge = craft(chained, manifest=_model(num_layers=10**6))
    _refused(
        client,
        service,
        tenant,
        lambda: client.put("/v1/sessions/s1/kv", content=huge, headers=headers),
        "model.num_layers is 1000000",
    )
    sink = json.dumps({"sink_tokens": 10**6})
    _refused(
        client,
        service,
        tenant,
        lambda: client.put(
            "/v1/sessions/s1/kv", content=chained, params={"spec": sink}, headers=headers
        ),
        "spec.sink_tokens is 1000000",
    )
    stored = client.put("/v1/sessions/s1/kv", content=chained, headers=headers)
    assert stored.status_code == 200, stored.text


def test_limits_are_settings_and_compose_obeys_them(client, service, tenant) -> None:
    a = _push(client, tenant, RAW).json()
    b = _push(client, tenant, container(seed=1)).json()
    service.deps.settings.kv.max_tokens = 159
    try:
        _refused(
            client,
            service,
            tenant,
            lambda: _push(client, tenant, container(T=160)),
            "n_tokens is 160; the limit is 159",
        )
        _refused(
            client,
            service,
            tenant,
            lambda: client.post(
                "/v1/cartridges/compose", json={"ids": [a["id"], b["id"]]}, headers=tenant.headers
            ),
            "would hold 160 tokens; the limit is 159",
        )
    finally:
        service.deps.settings.kv.max_tokens = 262_144
    composed = client.post(
        "/v1/cartridges/compose", json={"ids": [a["id"], b["id"]]}, headers=tenant.headers
    )
    assert composed.status_code == 201 and composed.json()["n_tokens"] == 160, composed.text
