"""REST: cartridges and episodic caches on SQLite and PostgreSQL, tenant isolation, quota,
and every malformed input refused with a 4xx JSON error that changes nothing."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from kv_cartridges.format import read_container
from kv_cartridges.quant import QuantSpec
from memsvc.service import MemoryService
from tests.conftest import ADMIN_KEY, TenantKey
from tests.integration.kv.conftest import container_for

OCTET = {"Content-Type": "application/octet-stream"}


def _push(client: TestClient, tenant: TenantKey, body: bytes, **params) -> object:
    return client.post(
        "/v1/cartridges", content=body, params=params, headers=tenant.headers | OCTET
    )


def _state(service: MemoryService, tenant: TenantKey) -> tuple[int, list[str]]:
    blobs = sorted(
        p.name
        for p in service.deps.blobs.root.rglob("*")
        if p.is_file()  # type: ignore[attr-defined]
    )
    return service.kv.list(tenant.tenant_id).count, blobs


def test_cartridge_round_trip(client, tenant, tiny_model, token_ids) -> None:
    body = container_for(tiny_model, token_ids).to_bytes()
    made = _push(client, tenant, body, name="doc-a", metadata=json.dumps({"v": 1}))
    assert made.status_code == 201, made.text
    kv = made.json()
    assert kv["kind"] == "cartridge" and kv["name"] == "doc-a" and kv["n_tokens"] == 150
    assert kv["corpus_id"] == "c1" and kv["metadata"] == {"v": 1} and kv["size_bytes"] == len(body)

    listed = client.get(
        "/v1/cartridges", params={"model_id": kv["model_id"]}, headers=tenant.headers
    )
    assert [c["id"] for c in listed.json()["data"]] == [kv["id"]]
    assert (
        client.get("/v1/cartridges", params={"name": "other"}, headers=tenant.headers).json()[
            "count"
        ]
        == 0
    )
    assert (
        client.get("/v1/cartridges", params={"model_id": "f" * 32}, headers=tenant.headers).json()[
            "count"
        ]
        == 0
    )
    content = client.get(f"/v1/cartridges/{kv['id']}/content", headers=tenant.headers)
    assert content.status_code == 200 and content.content == body
    assert content.headers["content-type"] == "application/octet-stream"
    assert client.get(f"/v1/cartridges/{kv['id']}", headers=tenant.headers).json()["use_count"] == 1

    assert client.delete(f"/v1/cartridges/{kv['id']}", headers=tenant.headers).status_code == 204
    gone = client.get(f"/v1/cartridges/{kv['id']}", headers=tenant.headers)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


def test_server_side_compression_and_compose(client, tenant, tiny_model, token_ids) -> None:
    raw = container_for(tiny_model, token_ids).to_bytes()
    made = _push(client, tenant, raw, spec="default").json()
    assert made["codec"]["name"] == "kvquant" and made["size_bytes"] < len(raw) / 4
    other = _push(client, tenant, raw, spec=json.dumps({"k_bits": 8, "v_bits": 8})).json()
    assert other["codec"]["spec"]["k_bits"] == 8
    composed = client.post(
        "/v1/cartridges/compose",
        json={"ids": [made["id"], other["id"]], "name": "both"},
        headers=tenant.headers,
    )
    assert composed.status_code == 201, composed.text
    c = composed.json()
    assert c["n_tokens"] == 300 and c["origin"]["composed_of"] == [made["id"], other["id"]]
    pulled = read_container(
        client.get(f"/v1/cartridges/{c['id']}/content", headers=tenant.headers).content
    )
    k, _ = pulled.layers()[0]
    assert k.shape == (1, 2, 300, 16)


def test_episodic_put_lookup_get_delete(client, tenant, tiny_model, token_ids) -> None:
    origin = {"kind": "session", "session_id": "s1"}
    body = container_for(tiny_model, token_ids[:100], origin=origin).to_bytes()
    put = client.put("/v1/sessions/s1/kv", content=body, headers=tenant.headers | OCTET)
    assert put.status_code == 200, put.text
    kv = put.json()
    assert kv["kind"] == "episodic" and kv["session_id"] == "s1"
    # replacing: the newer cache of the session wins, the older is gone
    longer = container_for(tiny_model, token_ids, origin=origin).to_bytes()
    kv2 = client.put("/v1/sessions/s1/kv", content=longer, headers=tenant.headers | OCTET).json()
    assert client.get(f"/v1/kv/{kv['id']}", headers=tenant.headers).status_code == 404
    look = client.post(
        "/v1/kv/lookup",
        json={"model_id": kv["model_id"], "token_ids": [*token_ids, 1, 2, 3]},
        headers=tenant.headers,
    ).json()
    assert look["n_tokens"] == 150 and look["kv"]["id"] == kv2["id"]
    partial = client.post(
        "/v1/kv/lookup",
        json={"model_id": kv["model_id"], "token_ids": [*token_ids[:140], 0, 0]},
        headers=tenant.headers,
    ).json()
    assert partial["n_tokens"] == 128  # two whole chunks of 64
    none = client.post(
        "/v1/kv/lookup",
        json={"model_id": kv["model_id"], "token_ids": [7, *token_ids]},
        headers=tenant.headers,
    ).json()
    assert none == {"n_tokens": 0, "kv": None}
    content = client.get(f"/v1/kv/{kv2['id']}/content", headers=tenant.headers)
    assert content.content == longer
    assert client.delete(f"/v1/kv/{kv2['id']}", headers=tenant.headers).status_code == 204
    assert client.get("/v1/kv", headers=tenant.headers).json()["count"] == 0


def test_tenant_isolation(client, tenant, other_tenant, tiny_model, token_ids) -> None:
    body = container_for(tiny_model, token_ids).to_bytes()
    kv = _push(client, tenant, body).json()
    h = other_tenant.headers
    for path in (f"/v1/cartridges/{kv['id']}", f"/v1/cartridges/{kv['id']}/content",
                 f"/v1/kv/{kv['id']}", f"/v1/kv/{kv['id']}/content"):  # fmt: skip
        assert client.get(path, headers=h).status_code == 404, path
    assert client.delete(f"/v1/kv/{kv['id']}", headers=h).status_code == 404
    assert client.get("/v1/cartridges", headers=h).json()["count"] == 0
    look = client.post(
        "/v1/kv/lookup", json={"model_id": kv["model_id"], "token_ids": token_ids}, headers=h
    ).json()
    assert look["kv"] is None
    compose = client.post("/v1/cartridges/compose", json={"ids": [kv["id"], kv["id"]]}, headers=h)
    assert compose.status_code == 404
    assert client.get(f"/v1/cartridges/{kv['id']}", headers=tenant.headers).status_code == 200
    assert client.get("/v1/cartridges").status_code == 401


def _corruptions(body: bytes) -> dict[str, tuple[bytes, str]]:
    n = int.from_bytes(body[:8], "little")
    header = json.loads(body[8 : 8 + n])
    manifest = json.loads(header["__metadata__"]["memsvc.kv"])

    def with_manifest(**changes) -> bytes:
        h = dict(header)
        h["__metadata__"] = {"memsvc.kv": json.dumps(manifest | changes)}
        raw = json.dumps(h).encode()
        return len(raw).to_bytes(8, "little") + raw + body[8 + n :]

    flipped = bytearray(body)
    flipped[-3] ^= 0xFF
    first = sorted(k for k in header if k != "__metadata__")[0]
    reshaped = dict(header)
    reshaped[first] = dict(header[first], shape=[1, 2, 149, 16])
    raw = json.dumps(reshaped).encode()
    return {
        "truncated": (body[: len(body) - 10], "truncated"),
        "oversized": (body + b"\0" * 16, "oversized"),
        "checksum": (bytes(flipped), "checksum mismatch"),
        "version": (with_manifest(version=2), "unknown container version 2"),
        "shape": (len(raw).to_bytes(8, "little") + raw + body[8 + n :], "needs 19072"),
        "n_tokens": (with_manifest(n_tokens=200), "token_chain has"),
        "model_id": (with_manifest(model_id="0" * 32), "model_id"),
        "not safetensors": (b"hello world, not a container", "not a container"),
        "short": (b"abc", "truncated: 3 bytes"),
        "no manifest": (
            body[:8] + body[8 : 8 + n].replace(b"memsvc.kv", b"memsvc.xx") + body[8 + n :],
            "no 'memsvc.kv' manifest",
        ),
    }


def test_malformed_uploads_are_refused_and_change_nothing(
    client, service, tenant, tiny_model, token_ids
) -> None:
    body = container_for(tiny_model, token_ids).to_bytes()
    before = _state(service, tenant)
    for case, (bad, message) in _corruptions(body).items():
        answer = _push(client, tenant, bad)
        assert answer.status_code == 422, (case, answer.text)
        error = answer.json()["error"]
        assert message in error["message"] and error["field"] == "content", (case, error)
        assert _state(service, tenant) == before, case
    refused = {
        "empty": (_push(client, tenant, b""), 422, "empty body"),
        "multipart": (
            client.post("/v1/cartridges", files={"f": ("x", body)}, headers=tenant.headers),
            415,
            "send the container file",
        ),
        "preset": (_push(client, tenant, body, spec="huge"), 422, "unknown preset 'huge'"),
        "spec field": (_push(client, tenant, body, spec='{"k_bits": 5}'), 422, "k_bits=5"),
        "metadata": (_push(client, tenant, body, metadata="[1]"), 422, "metadata: Input should"),
        "session origin": (
            _push(
                client,
                tenant,
                container_for(
                    tiny_model, token_ids, origin={"kind": "session", "session_id": "s"}
                ).to_bytes(),
            ),
            422,
            "origin.kind is 'session'",
        ),
        "wrong session": (
            client.put("/v1/sessions/other/kv", content=body, headers=tenant.headers | OCTET),
            422,
            "does not name session 'other'",
        ),
        "long session id": (
            client.put(
                f"/v1/sessions/{'x' * 201}/kv", content=body, headers=tenant.headers | OCTET
            ),
            422,
            "session_id must be 1-200 characters",
        ),
        "lookup ids": (
            client.post(
                "/v1/kv/lookup", json={"model_id": "x", "token_ids": [-1]}, headers=tenant.headers
            ),
            422,
            "non-negative",
        ),
        "lookup body": (
            client.post("/v1/kv/lookup", json={"token_ids": "abc"}, headers=tenant.headers),
            422,
            "model_id",
        ),
        "compose one": (
            client.post("/v1/cartridges/compose", json={"ids": ["a"]}, headers=tenant.headers),
            422,
            "ids",
        ),
    }
    for case, (answer, status, message) in refused.items():
        assert answer.status_code == status, (case, answer.text)
        assert message in answer.json()["error"]["message"], (case, answer.json())
        assert _state(service, tenant) == before, case
    quantized = _push(
        client, tenant, container_for(tiny_model, token_ids, spec=QuantSpec()).to_bytes()
    )
    kv = quantized.json()
    content = client.get(f"/v1/cartridges/{kv['id']}/content", headers=tenant.headers).content
    twice = _push(client, tenant, content, spec="default")
    assert twice.status_code == 422 and "already encoded" in twice.json()["error"]["message"]


def test_quota_and_upload_limit(client, service, tenant, tiny_model, token_ids) -> None:
    body = container_for(tiny_model, token_ids).to_bytes()
    limits = f"/v1/admin/tenants/{tenant.tenant_id}/kv-limits"
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    default = client.get(limits, headers=admin).json()
    assert default["quota_bytes"] is None and default["used_bytes"] == 0
    assert default["effective_quota_bytes"] == service.settings.kv.quota_bytes
    assert client.get(limits, headers=tenant.headers).status_code == 403  # the admin's route
    assert client.get("/v1/admin/tenants/nobody/kv-limits", headers=admin).status_code == 404
    bad = client.put(limits, json={"quota_bytes": -1}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "quota_bytes"
    set_ = client.put(limits, json={"quota_bytes": len(body) + 10}, headers=admin).json()
    assert set_["quota_bytes"] == set_["effective_quota_bytes"] == len(body) + 10
    assert set_["retention_bytes"] is None
    assert _push(client, tenant, body).status_code == 201
    assert client.get(limits, headers=admin).json()["used_bytes"] == len(body)
    before = _state(service, tenant)
    over = _push(client, tenant, body)
    assert over.status_code == 413 and over.json()["error"]["code"] == "quota_exceeded"
    assert _state(service, tenant) == before
    service.deps.settings.kv.max_upload_bytes = len(body) - 1
    try:
        big = _push(client, tenant, body)
        assert big.status_code == 413 and "limit" in big.json()["error"]["message"]
    finally:
        service.deps.settings.kv.max_upload_bytes = 8 << 30
    assert _state(service, tenant) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_compose_refuses_other_models(client, tenant, tiny_model, token_ids) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    other = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=128,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=16,
        )
    ).eval()
    a = _push(client, tenant, container_for(tiny_model, token_ids).to_bytes()).json()
    b = _push(client, tenant, container_for(other, token_ids).to_bytes()).json()
    refused = client.post(
        "/v1/cartridges/compose", json={"ids": [a["id"], b["id"]]}, headers=tenant.headers
    )
    assert refused.status_code == 422 and "different models" in refused.json()["error"]["message"]


def _raw_with(tiny_model, token_ids, *, rope=None, start_position=0) -> bytes:
    """A raw container whose fingerprint's RoPE settings or first position are the caller's."""
    import dataclasses

    from kv_cartridges.adapters import cache_layers
    from kv_cartridges.fingerprint import ModelFingerprint
    from kv_cartridges.format import KVContainer
    from tests.integration.kv.conftest import prefill

    fp = ModelFingerprint.from_model(tiny_model)
    fp = fp if rope is None else dataclasses.replace(fp, rope=rope)
    cache, _ = prefill(tiny_model, token_ids)
    layers = cache_layers(cache, ModelFingerprint.from_model(tiny_model))
    built = KVContainer.build(layers, fp, start_position=start_position,
                              origin={"kind": "cartridge", "corpus_id": "c1"})  # fmt: skip
    return built.to_bytes()


def test_server_side_compression_quantizes_keys_before_the_models_rope(
    client, service, tenant, tiny_model, token_ids
) -> None:
    """Compressed on upload, keys go before the RoPE the fingerprint names, from the manifest's
    first position; RoPE settings that describe no usable RoPE mean plain keys, not an error;
    non-JSON numbers and impossible positions are refused and change nothing."""
    made = _push(client, tenant, _raw_with(tiny_model, token_ids, start_position=7), spec="default")
    assert made.status_code == 201, made.text
    stored = read_container(
        client.get(f"/v1/cartridges/{made.json()['id']}/content", headers=tenant.headers).content
    )
    assert stored.manifest.layers[0]["key_rope"] == {"start": 7, "pairs": 8}
    for rope in (
        {"rope_parameters": {"rope_type": "linear", "rope_theta": 1e4, "factor": None}},
        {"rope_parameters": {"rope_type": "linear", "rope_theta": 1e4, "factor": 0}},
        {"rope_theta": "x"},
        {"rope_theta": 1e4, "partial_rotary_factor": -1},
    ):
        plain = _push(client, tenant, _raw_with(tiny_model, token_ids, rope=rope), spec="default")
        assert plain.status_code == 201, (rope, plain.text)
        content = client.get(
            f"/v1/cartridges/{plain.json()['id']}/content", headers=tenant.headers
        ).content
        assert "key_rope" not in read_container(content).manifest.layers[0], rope
    before = _state(service, tenant)
    nan_rope = {"rope_theta": 1e4, "partial_rotary_factor": float("nan")}
    refused = {
        "NaN": (_raw_with(tiny_model, token_ids, rope=nan_rope), "NaN is not JSON"),
        "far position": (_raw_with(tiny_model, token_ids, start_position=2**60), "start_position"),
    }
    for case, (body, message) in refused.items():
        answer = _push(client, tenant, body, spec="default")
        assert answer.status_code == 422, (case, answer.text)
        assert message in answer.json()["error"]["message"], (case, answer.json())
        assert _state(service, tenant) == before, case


def test_kv_limits_back_to_the_settings(client, service, tenant) -> None:
    limits = f"/v1/admin/tenants/{tenant.tenant_id}/kv-limits"
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    client.put(limits, json={"quota_bytes": 1, "retention_bytes": 2}, headers=admin)
    back = client.put(limits, json={"quota_bytes": None}, headers=admin).json()
    assert back["quota_bytes"] is None and back["retention_bytes"] is None  # replaced whole
    assert back["effective_retention_bytes"] == service.settings.kv.retention_bytes
