"""``/v1/consolidate``, ``/v1/jobs``, ``/v1/graph`` and restore over REST (embedded mode)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.conftest import TenantKey

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def _events(client: TestClient, tenant: TenantKey, session_id: str, texts: list[str]) -> None:
    body = {
        "user_id": "u",
        "session_id": session_id,
        "events": [
            {"speaker": "Ann", "content": t, "event_time": (T0 + timedelta(minutes=n)).isoformat()}
            for n, t in enumerate(texts)
        ],
    }
    assert client.post("/v1/events", json=body, headers=tenant.headers).status_code == 201


def _wait(client: TestClient, tenant: TenantKey, job_id: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=tenant.headers).json()
        if job["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_consolidate_returns_a_job_that_completes(client: TestClient, tenant: TenantKey) -> None:
    _events(client, tenant, "s1", ["I live in Oslo.", "I adopted a cat named Tom last week."])
    answer = client.post("/v1/consolidate", json={"user_id": "u"}, headers=tenant.headers)
    assert answer.status_code == 202
    job = answer.json()
    assert (
        job["state"] == "queued"
        and job["trigger"] == "request"
        and job["scope"] == {"user_id": "u"}
    )
    done = _wait(client, tenant, job["id"])
    assert done["state"] == "succeeded" and done["step"] == "done", done
    assert done["counts"]["events"] == 2 and done["counts"]["add"] >= 2 and done["errors"] == []

    entities = client.get("/v1/graph/entities", params={"user_id": "u"}, headers=tenant.headers)
    by_name = {e["name"]: e for e in entities.json()["data"]}
    assert by_name["Ann"]["type"] == "person" and by_name["Oslo"]["type"] == "place"
    detail = client.get(f"/v1/graph/entities/{by_name['Ann']['id']}", headers=tenant.headers)
    assert detail.status_code == 200
    assert "Oslo" in {n["entity"]["name"] for n in detail.json()["neighbours"]}
    relations = client.get(
        "/v1/graph/relations", params={"type": "lives_in"}, headers=tenant.headers
    ).json()
    assert [(r["source"]["name"], r["target"]["name"]) for r in relations["data"]] == [
        ("Ann", "Oslo")
    ]
    assert relations["data"][0]["memory_id"]


def test_bad_requests_name_the_field(client: TestClient, tenant: TenantKey) -> None:
    h = tenant.headers
    missing = client.post("/v1/consolidate", json={"session_id": "nope"}, headers=h)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "session_id"
    typo = client.post("/v1/consolidate", json={"sesion_id": "x"}, headers=h)
    assert typo.status_code == 422 and typo.json()["error"]["field"] == "sesion_id"
    assert client.get("/v1/jobs/nope", headers=h).json()["error"]["field"] == "job_id"
    assert client.get("/v1/graph/entities/nope", headers=h).status_code == 404
    bad_cursor = client.get("/v1/graph/entities", params={"cursor": "x"}, headers=h)
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["field"] == "cursor"
    assert client.post("/v1/memories/nope/restore", headers=h).status_code == 404


def test_consolidation_routes_are_tenant_isolated(
    client: TestClient, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    _events(client, tenant, "secret", ["I live in Oslo.", "My dog is named Rex."])
    job = client.post("/v1/consolidate", json={"session_id": "secret"}, headers=tenant.headers)
    assert _wait(client, tenant, job.json()["id"])["state"] == "succeeded"
    entity = client.get("/v1/graph/entities", headers=tenant.headers).json()["data"][0]
    memory = client.get("/v1/memories", headers=tenant.headers).json()["data"][0]

    b = other_tenant.headers
    assert client.get(f"/v1/jobs/{job.json()['id']}", headers=b).status_code == 404
    assert (
        client.post("/v1/consolidate", json={"session_id": "secret"}, headers=b).status_code == 404
    )
    assert client.get(f"/v1/graph/entities/{entity['id']}", headers=b).status_code == 404
    assert client.get("/v1/graph/entities", headers=b).json()["count"] == 0
    assert client.get("/v1/graph/relations", headers=b).json()["count"] == 0
    scoped = client.get("/v1/graph/relations", params={"entity_id": entity["id"]}, headers=b)
    assert scoped.status_code == 404
    assert client.post(f"/v1/memories/{memory['id']}/restore", headers=b).status_code == 404
    # B's own consolidation of everything it has touches nothing of A's.
    mine = client.post("/v1/consolidate", json={}, headers=b).json()
    assert _wait(client, other_tenant, mine["id"])["counts"].get("events", 0) == 0
    assert client.get("/v1/graph/entities", headers=tenant.headers).json()["count"] >= 2
