"""``GET /metrics`` after real requests: families, labels and counts move as they should."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.service.stats import STATE_FAMILIES, StateCollector, top_tenants
from tests.conftest import make_settings, new_tenant


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple], float]:
    """Every sample of the exposition, keyed by (name, sorted labels)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_writes_and_searches_are_counted(client: TestClient, tenant) -> None:
    before = scrape(client)
    h = tenant.headers
    added = client.post(
        "/v1/memories", json={"items": [{"text": f"fact {i}", "user_id": "u"} for i in range(3)]},
        headers=h,
    )  # fmt: skip
    assert added.status_code == 201
    memory_id = added.json()["data"][0]["id"]
    assert client.get(f"/v1/memories/{memory_id}", headers=h).status_code == 200
    assert client.get(f"/v1/memories/{uuid.uuid4()}", headers=h).status_code == 404
    assert client.post("/v1/search", json={"query": "fact"}, headers=h).status_code == 200
    events = [{"session_id": "s1", "user_id": "u", "role": "user", "content": "I live in Oslo"}]
    assert client.post("/v1/events", json={"events": events}, headers=h).status_code == 201
    assert client.delete(f"/v1/memories/{memory_id}", headers=h).status_code == 200
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Route templates, never raw ids: one series for every memory id.
    get = {"method": "GET", "route": "/v1/memories/{memory_id}"}
    assert delta("memsvc_http_requests_total", **get, status="200") == 1
    assert delta("memsvc_http_requests_total", **get, status="404") == 1
    assert delta("memsvc_http_request_duration_seconds_count", **get, status="200") == 1
    assert not any(memory_id in str(key) for key in after)
    assert delta("memsvc_memories_written_total", op="ADD") == 3
    assert delta("memsvc_memories_written_total", op="DELETE") == 1
    assert delta("memsvc_events_written_total") == 1
    assert delta("memsvc_searches_total", kind="search") == 1
    for stage in ("embed", "candidates", "retrieve", "fuse", "materialise", "total"):
        assert delta("memsvc_search_stage_seconds_count", stage=stage) == 1, stage
    # State gauges, read at scrape time.
    assert value(after, "memsvc_working_memory_events") >= 1
    assert ("memsvc_jobs", (("kind", "consolidate"), ("state", "queued"))) in after
    assert value(after, "memsvc_index_vectors", tenant=tenant.tenant_id) == 2  # 3 added, 1 gone
    assert ("memsvc_webhook_deliveries", (("state", "pending"),)) in after


def test_unmatched_paths_share_one_series(client: TestClient) -> None:
    for n in range(3):
        assert client.get(f"/no/such/{n}").status_code == 404
    samples = scrape(client)
    assert value(samples, "memsvc_http_requests_total", method="GET", route="unmatched",
                 status="404") >= 3  # fmt: skip
    assert not any("/no/such" in str(key) for key in samples)


def test_request_id_round_trip(client: TestClient, tenant) -> None:
    given = client.get("/v1/memories", headers={**tenant.headers, "X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    fresh = client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32
    # An id that is not a safe token is replaced, never echoed into logs or headers.
    odd = client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    assert odd.headers["x-request-id"] != "a b\tc"
    # Errors carry it too (a 413 of the body limit, answered outside the routes).
    big = client.post("/v1/search", content=b"x" * (17 * 1024 * 1024), headers=tenant.headers)
    assert big.status_code == 413 and big.headers["x-request-id"]


def test_metrics_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "d", metrics={"token": "scrape-secret-123"})
    service = build_service(settings)
    try:
        with TestClient(create_app(settings, service=service)) as client:
            assert client.get("/metrics").status_code == 401
            wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert "error" in wrong.json()
            ok = scrape(client, Authorization="Bearer scrape-secret-123")
            assert ("memsvc_working_memory_events", ()) in ok
    finally:
        service.close()


def test_metrics_off(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "d", metrics={"enabled": False})
    service = build_service(settings)
    try:
        with TestClient(create_app(settings, service=service)) as client:
            assert client.get("/metrics").status_code == 404
    finally:
        service.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_per_tenant_labels_are_bounded(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path / "d", db_url, metrics={"tenant_labels": 2})
    service = build_service(settings)
    try:
        tenants = [new_tenant(service, f"c{n}") for n in range(5)]
        with TestClient(create_app(settings, service=service)) as client:
            for n, t in enumerate(tenants):  # tenant n has n + 1 memories
                items = [{"text": f"memory {n} {i}"} for i in range(n + 1)]
                assert client.post("/v1/memories", json={"items": items},
                                   headers=t.headers).status_code == 201  # fmt: skip
            # Partitions load on demand: the gauge counts what this replica has loaded, so each
            # tenant searches once.
            for t in tenants:
                client.post("/v1/search", json={"query": "memory"}, headers=t.headers)
            samples = scrape(client)
        series = {k[1]: v for k, v in samples.items() if k[0] == "memsvc_index_vectors"}
        assert series == {
            (("tenant", tenants[4].tenant_id),): 5,
            (("tenant", tenants[3].tenant_id),): 4,
            (("tenant", "other"),): 1 + 2 + 3,
        }
    finally:
        service.close()


def test_top_tenants() -> None:
    assert top_tenants({"a": 1, "b": 5, "c": 3}, 1) == {"b": 5, "other": 4}
    assert top_tenants({"a": 1}, 3) == {"a": 1}
    assert top_tenants({"a": 1, "b": 2}, 0) == {"other": 3}


def test_state_families_are_the_declared_ones(tmp_path: Path, redis_url: str) -> None:
    embedded = build_service(make_settings(tmp_path / "e"))
    stack = build_service(make_settings(tmp_path / "s", redis_url=redis_url))
    try:
        names = {f.name for f in StateCollector(embedded.deps).collect()}
        assert names == set(STATE_FAMILIES) - {"memsvc_queue_depth"}
        families = {f.name: f for f in StateCollector(stack.deps).collect()}
        assert set(families) == set(STATE_FAMILIES)
        (depth,) = families["memsvc_queue_depth"].samples
        assert depth.value >= 0
    finally:
        embedded.close()
        stack.close()
