"""Boolean filter operators (``where``) on GET /v1/memories and POST /v1/search, evaluated in
SQL with the same answers on SQLite and PostgreSQL, checked against a Python reference."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsvc.errors import InvalidRequestError
from memsvc.sdk import Memory, MemoryClient
from memsvc.service import MemoryService
from tests.conftest import TenantKey
from tests.integration.filters.reference import matching

ROWS: list[dict[str, Any]] = [
    {"text": "alpha", "user_id": "u1", "agent_id": "a1", "session_id": "s1", "kind": "fact",
     "metadata": {"topic": "food", "n": 3, "vip": True, "tag": "Spicy Thai"},
     "occurred_at": "2026-01-01T00:00:00Z"},
    {"text": "beta", "user_id": "u1", "session_id": "s2", "kind": "preference",
     "metadata": {"topic": "travel", "n": 10, "vip": False},
     "occurred_at": "2026-02-01T00:00:00Z"},
    {"text": "gamma", "user_id": "u2", "agent_id": "a2", "kind": "note",
     "metadata": {"topic": "food", "n": "10", "tag": "mild"},
     "occurred_at": "2026-03-01T00:00:00Z", "valid_from": "2026-03-01T00:00:00Z"},
    {"text": "delta", "user_id": "u2", "agent_id": "a1", "kind": "event",
     "metadata": {"n": 7.5, "topic": None}, "occurred_at": "2025-12-01T00:00:00Z"},
    {"text": "epsilon", "agent_id": "a2", "kind": "fact", "importance": 0.9,
     "occurred_at": "2026-04-01T00:00:00Z"},
    {"text": "zeta", "user_id": "u3", "kind": "plan", "importance": 0.1,
     "metadata": {"topic": "FOOD", "tag": "thai curry", "n": -2}},
]  # fmt: skip

# Each operator separates the rows: (where, the texts it keeps).
CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"user_id": "u1"}, {"alpha", "beta"}),
    ({"user_id": {"eq": "u1"}}, {"alpha", "beta"}),
    ({"user_id": {"ne": "u1"}}, {"gamma", "delta", "epsilon", "zeta"}),
    ({"user_id": {"in": ["u1", "u3"]}}, {"alpha", "beta", "zeta"}),
    ({"user_id": {"nin": ["u1", "u3"]}}, {"gamma", "delta", "epsilon"}),
    ({"agent_id": "*"}, {"alpha", "gamma", "delta", "epsilon"}),
    ({"NOT": {"agent_id": "*"}}, {"beta", "zeta"}),
    ({"session_id": {"exists": False}}, {"gamma", "delta", "epsilon", "zeta"}),
    ({"metadata.n": {"gt": 7.5}}, {"beta"}),
    ({"metadata.n": {"gte": 7.5}}, {"beta", "delta"}),
    ({"metadata.n": {"lt": 7.5}}, {"alpha", "zeta"}),
    ({"metadata.n": {"lte": 7.5, "gt": 0}}, {"alpha", "delta"}),
    ({"metadata.n": {"gte": "1"}}, {"gamma"}),
    ({"metadata.n": "10"}, {"gamma"}),
    ({"metadata.n": 10}, {"beta"}),
    ({"metadata.n": {"in": [3, "10"]}}, {"alpha", "gamma"}),
    ({"metadata.n": {"nin": [3, "10"]}}, {"beta", "delta", "epsilon", "zeta"}),
    ({"metadata.topic": {"contains": "foo"}}, {"alpha", "gamma"}),
    ({"metadata.topic": {"icontains": "FoO"}}, {"alpha", "gamma", "zeta"}),
    ({"metadata": {"tag": {"contains": "Thai"}}}, {"alpha"}),
    ({"metadata": {"tag": {"icontains": "thai"}}}, {"alpha", "zeta"}),
    ({"metadata.topic": {"ne": "food"}}, {"beta", "delta", "epsilon", "zeta"}),
    ({"metadata.topic": "*"}, {"alpha", "beta", "gamma", "zeta"}),
    ({"metadata.topic": None}, {"delta", "epsilon"}),
    ({"metadata.vip": True}, {"alpha"}),
    ({"metadata.vip": False}, {"beta"}),
    ({"kind": {"in": ["fact", "note"]}}, {"alpha", "gamma", "epsilon"}),
    ({"kind": {"ne": "fact"}}, {"beta", "gamma", "delta", "zeta"}),
    (
        {"occurred_at": {"gte": "2026-02-01T00:00:00Z", "lt": "2026-04-01T00:00:00Z"}},
        {"beta", "gamma"},
    ),
    ({"occurred_at": {"lte": "2025-12-01"}}, {"delta"}),
    ({"valid_from": "*"}, {"gamma"}),
    ({"importance": {"gt": 0.5}}, {"epsilon"}),
    ({"text": {"icontains": "ETA"}}, {"beta", "zeta"}),
    (
        {"OR": [{"kind": "plan"}, {"AND": [{"user_id": "u1"}, {"metadata.vip": False}]}]},
        {"zeta", "beta"},
    ),
    ({"NOT": [{"user_id": "u1"}, {"user_id": "u2"}]}, {"epsilon", "zeta"}),
    ({"user_id": "u2", "agent_id": "a1"}, {"delta"}),
]


@pytest.fixture
def stored(client: TestClient, tenant: TenantKey) -> list[dict[str, Any]]:
    reply = client.post("/v1/memories", json={"items": ROWS}, headers=tenant.headers)
    assert reply.status_code == 201, reply.text
    listed = client.get("/v1/memories", params={"limit": 100}, headers=tenant.headers)
    return listed.json()["data"]


def _listed(client: TestClient, tenant: TenantKey, where: dict[str, Any], **params: Any) -> Any:
    query = {"where": json.dumps(where), "limit": 100, **params}
    return client.get("/v1/memories", params=query, headers=tenant.headers)


def _searched(client: TestClient, tenant: TenantKey, filters: dict[str, Any]) -> Any:
    body = {"query": "alpha beta gamma delta epsilon zeta", "top_k": 50, "filters": filters}
    return client.post("/v1/search", json=body, headers=tenant.headers)


@pytest.mark.parametrize(("where", "expected"), CASES, ids=[json.dumps(c[0]) for c in CASES])
def test_each_operator_on_both_backends(
    client: TestClient,
    tenant: TenantKey,
    stored: list[dict[str, Any]],
    where: dict[str, Any],
    expected: set[str],
) -> None:
    assert matching(stored, where) == expected  # the reference agrees with the table
    reply = _listed(client, tenant, where)
    assert reply.status_code == 200, reply.text
    assert {m["text"] for m in reply.json()["data"]} == expected
    found = _searched(client, tenant, {"where": where})
    assert found.status_code == 200, found.text
    assert {r["memory"]["text"] for r in found.json()["data"]} == expected


def test_where_combines_with_scalar_filters(
    client: TestClient, tenant: TenantKey, stored: list[dict[str, Any]]
) -> None:
    # The existing equality filters keep working, alone and ANDed with where.
    reply = client.get(
        "/v1/memories", params={"metadata": json.dumps({"topic": "food"})}, headers=tenant.headers
    )
    assert {m["text"] for m in reply.json()["data"]} == {"alpha", "gamma"}
    reply = _listed(client, tenant, {"kind": "note"}, user_id="u2")
    assert {m["text"] for m in reply.json()["data"]} == {"gamma"}
    found = _searched(client, tenant, {"user_id": "u1", "where": {"metadata.n": {"gt": 5}}})
    assert {r["memory"]["text"] for r in found.json()["data"]} == {"beta"}


def test_other_tenants_rows_never_match(
    client: TestClient, tenant: TenantKey, other_tenant: TenantKey, stored: list[dict[str, Any]]
) -> None:
    reply = _listed(client, other_tenant, {"OR": [{"user_id": "*"}, {"NOT": {"user_id": "*"}}]})
    assert reply.json()["data"] == []


DEEP: dict[str, Any] = {"user_id": "u1"}
for _ in range(7):
    DEEP = {"NOT": DEEP}

BAD: list[tuple[dict[str, Any], str]] = [
    ({"user_id": {"like": "u%"}}, "unknown operator 'like'"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"metadata.n": {"gt": [1]}}, "gt takes a number or a string"),
    ({"metadata.n": {"contains": 3}}, "contains takes a string"),
    ({"importance": {"gt": "high"}}, "takes a number"),
    ({"kind": {"gt": "fact"}}, "kind does not take 'gt'"),
    ({"kind": "thought"}, "kind must be one of"),
    ({"created_at": {"gte": "yesterday"}}, "not an ISO 8601 timestamp"),
    ({"user_id": {"in": []}}, "in takes a non-empty list"),
    ({"user_id": {"in": ["u"] * 101}}, "the limit is 100"),
    ({"AND": {"user_id": "u1"}}, "AND takes a non-empty list"),
    ({"OR": [{"user_id": f"u{i}"} for i in range(65)]}, "more than 64 comparisons"),
    (DEEP, "nests deeper than 6 levels"),
    ({"metadata.bad key": 1}, "metadata key 'bad key'"),
    ({}, "must be a non-empty JSON object"),
]


@pytest.mark.parametrize(("where", "problem"), BAD, ids=[b[1] for b in BAD])
def test_bad_filters_are_422_naming_the_problem(
    client: TestClient, tenant: TenantKey, where: dict[str, Any], problem: str
) -> None:
    for reply in (_listed(client, tenant, where), _searched(client, tenant, {"where": where})):
        assert reply.status_code == 422, reply.text
        error = reply.json()["error"]
        assert problem in error["message"], error
        assert "where" in (error["field"] or ""), error


def test_where_that_is_not_json_is_422(client: TestClient, tenant: TenantKey) -> None:
    reply = client.get("/v1/memories", params={"where": "{nope"}, headers=tenant.headers)
    assert reply.status_code == 422
    assert "where" in reply.json()["error"]["field"]


# -- property: SQL agrees with the Python reference on random expressions -----------------

_VALUES = st.sampled_from(["u1", "u2", "a1", "food", "FOOD", "Thai", "thai", "10", "", "s1"])
_NUMBERS = st.sampled_from([-2, 0, 3, 7.5, 10, 11])
_KEYS = st.sampled_from(["metadata.topic", "metadata.n", "metadata.tag", "metadata.vip"])
_STRING_FIELDS = st.sampled_from(["user_id", "agent_id", "session_id", "text"])


def _leaves() -> st.SearchStrategy[dict[str, Any]]:
    string_leaf = st.builds(
        lambda f, op, v: {f: {op: v}},
        _STRING_FIELDS,
        st.sampled_from(["eq", "ne", "contains", "icontains"]),
        _VALUES,
    )
    in_leaf = st.builds(
        lambda f, op, vs: {f: {op: vs}},
        st.sampled_from(["user_id", "agent_id"]),
        st.sampled_from(["in", "nin"]),
        st.lists(_VALUES, min_size=1, max_size=3),
    )
    scalar = st.one_of(_VALUES, _NUMBERS, st.booleans(), st.none())
    metadata_leaf = st.one_of(
        st.builds(lambda k, v: {k: v}, _KEYS, scalar),
        st.builds(
            lambda k, op, v: {k: {op: v}},
            _KEYS,
            st.sampled_from(["ne", "gt", "gte", "lt", "lte"]),
            st.one_of(_VALUES, _NUMBERS),
        ),
        st.builds(
            lambda k, op, v: {k: {op: v}},
            _KEYS,
            st.sampled_from(["contains", "icontains"]),
            _VALUES,
        ),
        st.builds(lambda k: {k: "*"}, _KEYS),
    )
    kind_leaf = st.builds(
        lambda op, vs: {"kind": {op: vs}},
        st.sampled_from(["in", "nin"]),
        st.lists(st.sampled_from(["fact", "note", "plan", "event"]), min_size=1, max_size=2),
    )
    return st.one_of(string_leaf, in_leaf, metadata_leaf, kind_leaf)


_EXPRESSIONS = st.recursive(
    _leaves(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"AND": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"OR": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"NOT": x}, inner),
    ),
    max_leaves=8,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(where=_EXPRESSIONS)
def test_sql_matches_the_reference(
    client: TestClient, tenant: TenantKey, stored: list[dict[str, Any]], where: dict[str, Any]
) -> None:
    reply = _listed(client, tenant, where)
    assert reply.status_code == 200, reply.text
    assert {m["text"] for m in reply.json()["data"]} == matching(stored, where)


@pytest.mark.parametrize("mode", ["embedded", "rest"])
def test_the_sdk_sends_where(
    mode: str,
    service: MemoryService,
    tenant: TenantKey,
    client: TestClient,
    stored: list[dict[str, Any]],
) -> None:
    if mode == "embedded":
        sdk: Any = Memory(service=service, tenant_id=tenant.tenant_id)
    else:
        sdk = MemoryClient(api_key=tenant.key, http_client=client)
    where = {"OR": [{"kind": "plan"}, {"metadata.n": {"gte": 7.5}}]}
    with sdk:
        page = sdk.get_all(filters={"where": where})
        hits = sdk.search("alpha beta delta zeta", filters={"where": where}, top_k=50)
        with pytest.raises(InvalidRequestError) as info:
            sdk.get_all(filters={"where": {"kind": {"gt": "fact"}}})
    assert {m.text for m in page.data} == {"beta", "delta", "zeta"}
    assert {h.memory.text for h in hits} == {"beta", "delta", "zeta"}
    assert "kind does not take 'gt'" in str(info.value)
