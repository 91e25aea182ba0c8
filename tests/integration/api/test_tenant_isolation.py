"""A key of tenant B can never read, list, search, change or delete tenant A's data."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import TenantKey


def test_every_route_is_isolated(
    client: TestClient, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    a, b = tenant.headers, other_tenant.headers
    secret = client.post(
        "/v1/memories",
        json={"text": "tenant A secret: the vault opens at dawn", "user_id": "u"},
        headers=a,
    ).json()["data"][0]
    mid = secret["id"]

    # B uses the same user id and even the same text: still separate worlds.
    client.post("/v1/memories", json={"text": "B owns this", "user_id": "u"}, headers=b)

    assert client.get(f"/v1/memories/{mid}", headers=b).status_code == 404
    assert client.get(f"/v1/memories/{mid}/history", headers=b).status_code == 404
    assert (
        client.patch(f"/v1/memories/{mid}", json={"text": "hacked"}, headers=b).status_code == 404
    )
    assert client.delete(f"/v1/memories/{mid}", headers=b).status_code == 404
    listed = client.get("/v1/memories", params={"user_id": "u"}, headers=b).json()
    assert [m["text"] for m in listed["data"]] == ["B owns this"]
    everything = client.get("/v1/memories", headers=b).json()
    assert all(m["id"] != mid for m in everything["data"])
    found = client.post(
        "/v1/search", json={"query": "vault opens at dawn", "top_k": 100}, headers=b
    ).json()
    assert all("vault" not in r["memory"]["text"] for r in found["data"])
    scoped = client.post(
        "/v1/search",
        json={"query": "vault", "filters": {"user_id": "u", "metadata": {}}},
        headers=b,
    ).json()
    assert all(r["memory"]["id"] != mid for r in scoped["data"])
    assert client.delete("/v1/memories", params={"user_id": "u"}, headers=b).json() == {
        "deleted": 1
    }

    # A's memory is untouched by all of that.
    after = client.get(f"/v1/memories/{mid}", headers=a).json()
    assert after["text"] == secret["text"]
    history = client.get(f"/v1/memories/{mid}/history", headers=a).json()
    assert [h["op"] for h in history["data"]] == ["ADD"]
    assert client.post("/v1/search", json={"query": "vault"}, headers=a).json()["count"] == 1


def test_duplicate_text_across_tenants_is_not_deduplicated(
    client: TestClient, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    body = {"text": "same words", "user_id": "u"}
    first = client.post("/v1/memories", json=body, headers=tenant.headers).json()["data"][0]
    second = client.post("/v1/memories", json=body, headers=other_tenant.headers).json()["data"][0]
    assert first["event"] == second["event"] == "ADD"
    assert first["id"] != second["id"]
