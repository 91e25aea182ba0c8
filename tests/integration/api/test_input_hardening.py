"""Untrusted input at the API boundary, on SQLite and PostgreSQL: every string, number, timestamp,
cursor, filter and body size that no store can keep or no query can take is refused with a 422
(or 413) naming the field, nothing is written, and the tenant's reads keep answering."""

from __future__ import annotations

import base64
import json
import typing
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import text

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.operations import OPERATIONS
from memsvc.schemas.common import Strict
from memsvc.service import MemoryService
from memsvc.settings import Settings
from tests.conftest import ADMIN_KEY, TenantKey, make_settings, new_tenant
from tests.integration.api.hostile import nested

BODY_LIMIT = 64 * 1024
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def settings(tmp_path: Any, db_url: str) -> Settings:
    """This module's services: a small body limit, so that 413s are cheap to provoke."""
    return make_settings(tmp_path / "data", db_url, max_body_bytes=BODY_LIMIT)


def _send(client: TestClient, method: str, url: str, body: Any, headers: dict) -> Any:
    # json.dumps escapes lone surrogates (\ud800), as a client in another language would send
    # them; httpx's own encoder cannot encode them at all.
    content = json.dumps(body).encode()
    return client.request(
        method, url, content=content, headers={**headers, "content-type": "application/json"}
    )


def _refused(response: Any, field: str, status: int = 422) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    return error


def _assert_readable_and_empty(client: TestClient, tenant: TenantKey) -> None:
    h = tenant.headers
    for response in (
        client.get("/v1/memories", headers=h),
        client.get("/v1/events", headers=h),
        client.post("/v1/search", json={"query": "anything"}, headers=h),
    ):
        assert response.status_code == 200, response.text
        assert response.json()["count"] == 0, response.text


BAD_TEXT = ["a\x00b", "\ud800", "x\udfff", "\x00", "ok \ud83d"]  # NUL, lone surrogates


def _bodies(bad: str) -> list[tuple[str, str, Any, str]]:
    """(method, url, body, field named) for one unstorable string in every kind of place."""
    return [
        ("POST", "/v1/memories", {"text": bad}, "text"),
        ("POST", "/v1/memories", {"text": "t", "user_id": bad}, "user_id"),
        ("POST", "/v1/memories", {"text": "t", "metadata": {"k": bad}}, "metadata.k"),
        (
            "POST",
            "/v1/memories",
            {"text": "t", "metadata": {"k": [1, {"a": bad}]}},
            "metadata.k[1].a",
        ),
        ("POST", "/v1/memories", {"items": [{"text": "t"}, {"text": bad}]}, "items[1].text"),
        ("POST", "/v1/memories", {"text": "t", "source_event_ids": [bad]}, "source_event_ids[0]"),
        (
            "POST",
            "/v1/events",
            {"session_id": "s", "events": [{"content": "hello there", "metadata": {"k": bad}}]},
            "events[0].metadata.k",
        ),
        (
            "POST",
            "/v1/events",
            {"session_id": "s", "events": [{"content": bad}]},
            "events[0].content",
        ),
        ("POST", "/v1/events", {"session_id": bad, "events": [{"content": "hi"}]}, "session_id"),
        ("POST", "/v1/search", {"query": bad}, "query"),
        (
            "POST",
            "/v1/search",
            {"query": "q", "filters": {"metadata": {"k": bad}}},
            "filters.metadata.k",
        ),
        ("POST", "/v1/context", {"messages": [{"content": bad}]}, "messages[0].content"),
        ("POST", "/v1/consolidate", {"user_id": bad}, "user_id"),
    ]


@pytest.mark.parametrize(
    "bad", BAD_TEXT, ids=["nul-inside", "surrogate", "low-surrogate", "nul", "half-emoji"]
)
def test_unstorable_strings_are_refused_in_every_body(
    client: TestClient, tenant: TenantKey, bad: str
) -> None:
    for method, url, body, field in _bodies(bad):
        _refused(_send(client, method, url, body, tenant.headers), field)
    _assert_readable_and_empty(client, tenant)


def test_unstorable_strings_are_refused_in_keys_paths_queries_and_admin(
    client: TestClient, tenant: TenantKey
) -> None:
    h = tenant.headers
    _refused(
        _send(client, "POST", "/v1/memories", {"text": "t", "metadata": {"\ud800": 1}}, h),
        "metadata",
    )
    _refused(client.get("/v1/memories/a%00b", headers=h), "memory_id")
    _refused(client.get("/v1/sessions/%ED%A0%80", headers=h), "path")  # an encoded surrogate
    _refused(client.get("/v1/memories", params={"user_id": "u\x00"}, headers=h), "user_id")
    _refused(client.get("/v1/events?session_id=%FF", headers=h), "session_id")  # not UTF-8
    _refused(client.get("/v1/graph/entities", params={"name": "\x00"}, headers=h), "name")
    # A lone surrogate escape is not even valid JSON to the query model's parser.
    _refused(
        client.get("/v1/memories", params={"metadata": '{"k": "\\ud800"}'}, headers=h), "metadata"
    )
    _refused(
        client.get("/v1/memories", params={"metadata": '{"k": "\\u0000"}'}, headers=h), "metadata.k"
    )
    tenants = client.get("/v1/admin/tenants", headers=ADMIN).json()["count"]
    _refused(_send(client, "POST", "/v1/admin/tenants", {"name": "a\x00"}, ADMIN), "name")
    _refused(
        _send(
            client, "POST", f"/v1/admin/tenants/{tenant.tenant_id}/keys", {"name": "\udc00"}, ADMIN
        ),
        "name",
    )
    _refused(client.get("/v1/admin/tenants/t%00/keys", headers=ADMIN), "tenant_id")
    assert client.get("/v1/admin/tenants", headers=ADMIN).json()["count"] == tenants
    keys = client.get(f"/v1/admin/tenants/{tenant.tenant_id}/keys", headers=ADMIN).json()
    assert keys["count"] == 1
    _assert_readable_and_empty(client, tenant)


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T12:00:00Z",
    ],
)
def test_timestamps_out_of_range_are_refused(
    client: TestClient, tenant: TenantKey, stamp: str
) -> None:
    h = tenant.headers
    _refused(
        client.post("/v1/memories", json={"text": "t", "occurred_at": stamp}, headers=h),
        "occurred_at",
    )
    _refused(
        client.post("/v1/memories", json={"text": "t", "valid_to": stamp}, headers=h), "valid_to"
    )
    events = {"session_id": "s", "events": [{"content": "hi there", "event_time": stamp}]}
    _refused(client.post("/v1/events", json=events, headers=h), "events[0].event_time")
    search = {"query": "q", "filters": {"created_after": stamp}}
    _refused(client.post("/v1/search", json=search, headers=h), "filters.created_after")
    _refused(client.get("/v1/memories", params={"as_of": stamp}, headers=h), "as_of")
    _refused(client.get("/v1/events", params={"before": stamp}, headers=h), "before")
    _refused(client.get("/v1/graph/relations", params={"as_of": stamp}, headers=h), "as_of")
    ok = client.post(
        "/v1/memories", json={"text": "t", "occurred_at": "0001-01-03T00:00:00+05:00"}, headers=h
    )
    assert ok.status_code == 201, ok.text
    assert (
        client.get("/v1/memories", params={"as_of": "9999-12-29T00:00:00Z"}, headers=h).status_code
        == 200
    )


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BAD_CURSORS = [
    _cursor({"pk": 10**30, "order": "desc", "event_pk": 10**30, "session": 1}),
    _cursor({"pk": -1, "order": "desc"}),
    _cursor({"pk": "1", "order": "desc"}),
    _cursor({"pk": 1.5, "order": "desc"}),
    _cursor({"pk": True, "order": "desc"}),
    _cursor({"pk": [1], "order": "desc", "event_pk": {"a": 1}, "session": [1], "kv": 7}),
    _cursor({"session": "a\x00", "kv": "\ud800"}),
    _cursor(list(range(5))),
    _cursor({"pk": 1, "order": "desc", "x": "y" * 600}),
    "%%%",
    "A" * 10_000,
]


@pytest.mark.parametrize(
    "url",
    [
        "/v1/memories",
        "/v1/events",
        "/v1/sessions",
        "/v1/graph/entities",
        "/v1/graph/relations",
        "/v1/kv",
        "/v1/cartridges",
    ],
)
def test_malformed_cursors_are_refused(client: TestClient, tenant: TenantKey, url: str) -> None:
    for cursor in BAD_CURSORS:
        _refused(client.get(url, params={"cursor": cursor}, headers=tenant.headers), "cursor")


def test_numbers_past_64_bits_or_not_finite_are_refused(
    client: TestClient, tenant: TenantKey
) -> None:
    h = tenant.headers
    for big in (2**63, -(2**63) - 1, 10**30):
        _refused(
            client.post("/v1/memories", json={"text": "t", "metadata": {"n": big}}, headers=h),
            "metadata.n",
        )
        _refused(
            client.get("/v1/memories", params={"metadata": json.dumps({"n": big})}, headers=h),
            "metadata.n",
        )
        search = {"query": "q", "filters": {"metadata": {"n": big}}}
        _refused(client.post("/v1/search", json=search, headers=h), "filters.metadata.n")
        _refused(
            client.post("/v1/kv/lookup", json={"model_id": "m", "token_ids": [1, big]}, headers=h),
            "token_ids[1]",
        )
        _refused(client.post("/v1/search", json={"query": "q", "top_k": big}, headers=h), "top_k")
    for raw in (
        b'{"text": "t", "metadata": {"n": NaN}}',
        b'{"text": "t", "metadata": {"n": 1e999}}',
    ):
        response = client.post(
            "/v1/memories", content=raw, headers={**h, "content-type": "application/json"}
        )
        _refused(response, "metadata.n")
    digits = '{"n": ' + "9" * 5000 + "}"  # past Python's int-parsing limit
    _refused(client.get("/v1/memories", params={"metadata": digits}, headers=h), "metadata")
    ok = client.post(
        "/v1/memories", json={"text": "t", "metadata": {"n": 2**63 - 1, "m": -(2**63)}}, headers=h
    )
    assert ok.status_code == 201, ok.text
    assert (
        client.get(
            "/v1/memories", params={"metadata": json.dumps({"n": 2**63 - 1})}, headers=h
        ).json()["count"]
        == 1
    )


def test_filter_and_metadata_limits(client: TestClient, tenant: TenantKey) -> None:
    h = tenant.headers
    many = {f"k{n}": n for n in range(1200)}
    _refused(
        client.get("/v1/memories", params={"metadata": json.dumps(many)}, headers=h), "metadata"
    )
    _refused(
        client.post("/v1/search", json={"query": "q", "filters": {"metadata": many}}, headers=h),
        "filters.metadata",
    )
    _refused(
        client.request(
            "DELETE",
            "/v1/memories",
            params={"user_id": "u", "metadata": json.dumps(many)},
            headers=h,
        ),
        "metadata",
    )
    most = {f"k{n}": n for n in range(32)}  # MEMSVC_MAX_FILTER_KEYS
    assert (
        client.post(
            "/v1/search", json={"query": "q", "filters": {"metadata": most}}, headers=h
        ).status_code
        == 200
    )
    _refused(
        client.post("/v1/memories", json={"text": "t", "metadata": nested(900)}, headers=h),
        "metadata" + ".a" * 32,
    )
    _refused(
        client.post("/v1/memories", json={"text": "t", "metadata": nested(9)}, headers=h),
        "metadata",
    )
    _refused(
        client.post("/v1/memories", json={"text": "t", "metadata": {"s": "x" * 20_000}}, headers=h),
        "metadata",
    )
    _refused(
        client.get("/v1/memories", params={"metadata": "[" * 5000 + "]" * 5000}, headers=h),
        "metadata",
    )
    assert (
        client.post(
            "/v1/memories", json={"text": "t", "metadata": nested(8)}, headers=h
        ).status_code
        == 201
    )
    # Nested past the JSON parser's recursion limit, under the body limit: a 400, not a crash.
    deep = client.post(
        "/v1/memories", content=b"[" * 60_000, headers={**h, "content-type": "application/json"}
    )
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "invalid_request"


def test_typed_metadata_filters_agree_on_both_backends(
    client: TestClient, tenant: TenantKey
) -> None:
    h = tenant.headers
    values = {
        "str": "abc",
        "int": 7,
        "float": 7.0,
        "digits": "7",
        "true": True,
        "one": 1,
        "big": 2**40,
        "null": None,
        "obj": {"a": 1},
        "list": [7],
    }
    items = [
        {"text": f"m {name}", "metadata": {"t": v, "name": name}} for name, v in values.items()
    ]
    items.append({"text": "m missing", "metadata": {"name": "missing"}})
    assert client.post("/v1/memories", json={"items": items}, headers=h).status_code == 201

    def names(value: Any) -> set[str]:
        listed = client.get(
            "/v1/memories", params={"metadata": json.dumps({"t": value})}, headers=h
        )
        assert listed.status_code == 200, listed.text
        found = client.post(
            "/v1/search",
            json={"query": "m", "top_k": 50, "filters": {"metadata": {"t": value}}},
            headers=h,
        )
        assert found.status_code == 200, found.text
        from_list = {m["metadata"]["name"] for m in listed.json()["data"]}
        assert from_list == {r["memory"]["metadata"]["name"] for r in found.json()["data"]}
        return from_list

    assert names(7) == {"int", "float"}  # a number matches the same number, not "7" or true
    assert names(7.0) == {"int", "float"}
    assert names("7") == {"digits"}
    assert names("abc") == {"str"}
    assert names(True) == {"true"}
    assert names(1) == {"one"}
    assert names(2**40) == {"big"}
    assert names(2**62) == set()
    assert names(-(2**63)) == set()
    assert names(None) == {"null", "missing"}


def test_poisoned_rows_written_before_the_checks_stay_readable(tmp_path: Any) -> None:
    """SQLite kept lone surrogates in JSON text (PostgreSQL never could): such rows are read
    with U+FFFD in their place instead of failing every listing of the tenant."""
    service = build_service(make_settings(tmp_path / "data"))
    try:
        tenant = new_tenant(service)
        with TestClient(create_app(service.settings, service=service)) as client:
            _read_poisoned_rows(client, tenant, service)
    finally:
        service.close()


def _read_poisoned_rows(client: TestClient, tenant: TenantKey, service: MemoryService) -> None:
    h = tenant.headers
    added = client.post("/v1/memories", json={"text": "tea", "metadata": {"k": "v"}}, headers=h)
    memory_id = added.json()["data"][0]["id"]
    client.patch(f"/v1/memories/{memory_id}", json={"importance": 0.7}, headers=h)
    events = {"session_id": "s", "events": [{"content": "hello there"}]}
    assert client.post("/v1/events", json=events, headers=h).status_code == 201
    poison = '{"k": "\\ud800", "pair": "\\ud83d\\ude00"}'
    with service.deps.engine.begin() as connection:
        connection.execute(text("UPDATE memories SET metadata = :m"), {"m": poison})
        connection.execute(text("UPDATE events SET metadata = :m"), {"m": poison})
        connection.execute(text("UPDATE memory_history SET old_value = :m"), {"m": poison})
    got = client.get(f"/v1/memories/{memory_id}", headers=h)
    assert got.status_code == 200, got.text
    assert got.json()["metadata"] == {"k": "\ufffd", "pair": "\U0001f600"}  # a valid pair stays
    for response in (
        client.get("/v1/memories", headers=h),
        client.post("/v1/search", json={"query": "tea"}, headers=h),
        client.get(f"/v1/memories/{memory_id}/history", headers=h),
        client.get("/v1/events", headers=h),
    ):
        assert response.status_code == 200, response.text
    assert client.get("/v1/events", headers=h).json()["data"][0]["metadata"]["k"] == "\ufffd"


def _oversized(n: int) -> bytes:
    return json.dumps({"query": "q", "pad": "x" * n}).encode()


def test_bodies_over_the_limit_are_refused_before_parsing(
    client: TestClient, tenant: TenantKey
) -> None:
    h = {**tenant.headers, "content-type": "application/json"}
    declared = client.post("/v1/search", content=_oversized(BODY_LIMIT), headers=h)

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(BODY_LIMIT // 1024 + 2):
            yield b" " * 1024

    streamed = client.post("/v1/memories", content=chunks(), headers=h)
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert str(BODY_LIMIT) in response.json()["error"]["message"]
        assert response.headers["connection"] == "close"
    # A body of exactly the limit is parsed (and refused for what it says, not its size).
    head, tail = b'{"query": "q", "x": "', b'"}'
    exact = head + b"y" * (BODY_LIMIT - len(head) - len(tail)) + tail
    assert len(exact) == BODY_LIMIT
    assert client.post("/v1/search", content=exact, headers=h).status_code == 422
    # KV uploads stream under their own limit (MEMSVC_KV__MAX_UPLOAD_BYTES), not this one.
    upload = client.put(
        "/v1/sessions/s/kv",
        content=b"\0" * (2 * BODY_LIMIT),
        headers={**tenant.headers, "content-type": "application/octet-stream"},
    )
    assert upload.status_code not in (413, 500) and upload.status_code < 500, upload.text
    _assert_readable_and_empty(client, tenant)


def test_the_body_limit_holds_for_an_idempotent_retry(
    client: TestClient, tenant: TenantKey
) -> None:
    """A retry whose key has a stored reply is read (to compare fingerprints) before routing,
    by the idempotency middleware: still a JSON 413, and the stored write stays the only one."""
    h = {**tenant.headers, "Idempotency-Key": "retry-0001"}
    first = client.post("/v1/memories", json={"text": "once"}, headers=h)
    assert first.status_code == 201, first.text
    big = json.dumps({"text": "x" * (2 * BODY_LIMIT)}).encode()
    again = client.post(
        "/v1/memories", content=big, headers={**h, "content-type": "application/json"}
    )
    assert again.status_code == 413, again.text
    assert again.json()["error"]["field"] == "body"
    assert again.headers["connection"] == "close"
    assert client.get("/v1/memories", headers=tenant.headers).json()["count"] == 1


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def test_every_request_model_is_strict(client: TestClient) -> None:
    """The untrusted-value check lives on ``Strict``: a body or query model without it would
    let unstorable values through. Every /v1 route also documents its error body."""
    checked = 0
    for op in OPERATIONS:
        for annotation in (op.body, op.query):
            if annotation is None:
                continue
            models = _models(annotation)
            assert models, (op.id, annotation)
            for model in models:
                assert issubclass(model, Strict), (op.id, model)
            checked += 1
    assert checked >= 20
    document = client.get("/openapi.json").json()
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if path.startswith("/v1/"):
                error = operation["responses"]["4XX"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path)
