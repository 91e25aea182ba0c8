"""The REST API over SQLite and PostgreSQL: every memory route, and bad input."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_KEY, TenantKey


def _add(client: TestClient, tenant: TenantKey, body: dict) -> dict:
    response = client.post("/v1/memories", json=body, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    spec = client.get("/openapi.json").json()
    assert "/v1/memories/{memory_id}/history" in spec["paths"]
    assert spec["paths"]["/v1/search"]["post"]["operationId"] == "search-search"


def test_crud_round_trip(client: TestClient, tenant: TenantKey) -> None:
    one = _add(client, tenant, {"text": "I am allergic to peanuts", "user_id": "u"})
    assert one["count"] == 1 and one["data"][0]["event"] == "ADD"
    memory_id = one["data"][0]["id"]
    batch = _add(client, tenant, {"items": [{"text": "a", "user_id": "u"}, {"text": "b"}]})
    assert batch["count"] == 2

    got = client.get(f"/v1/memories/{memory_id}", headers=tenant.headers).json()
    assert got["text"] == "I am allergic to peanuts" and got["user_id"] == "u"

    patched = client.patch(
        f"/v1/memories/{memory_id}", json={"importance": 0.9}, headers=tenant.headers
    ).json()
    assert patched["importance"] == 0.9 and patched["text"] == got["text"]

    listed = client.get("/v1/memories", params={"user_id": "u"}, headers=tenant.headers).json()
    assert {m["text"] for m in listed["data"]} == {"I am allergic to peanuts", "a"}

    found = client.post(
        "/v1/search", json={"query": "peanut allergy", "top_k": 1}, headers=tenant.headers
    ).json()
    assert found["data"][0]["memory"]["id"] == memory_id

    history = client.get(f"/v1/memories/{memory_id}/history", headers=tenant.headers).json()
    assert [h["op"] for h in history["data"]] == ["ADD", "UPDATE"]

    assert client.delete(f"/v1/memories/{memory_id}", headers=tenant.headers).json() == {
        "deleted": 1
    }
    assert client.get(f"/v1/memories/{memory_id}", headers=tenant.headers).status_code == 404
    gone = client.delete("/v1/memories", params={"user_id": "u"}, headers=tenant.headers)
    assert gone.json() == {"deleted": 1}


def test_list_pagination_and_metadata_filter(client: TestClient, tenant: TenantKey) -> None:
    items = [{"text": f"note {n}", "metadata": {"n": n, "even": n % 2 == 0}} for n in range(5)]
    _add(client, tenant, {"items": items})
    page = client.get("/v1/memories", params={"limit": 2}, headers=tenant.headers).json()
    assert page["count"] == 2 and page["next_cursor"]
    rest = client.get(
        "/v1/memories", params={"limit": 10, "cursor": page["next_cursor"]}, headers=tenant.headers
    ).json()
    assert rest["count"] == 3 and rest["next_cursor"] is None
    even = client.get(
        "/v1/memories", params={"metadata": '{"even": true}'}, headers=tenant.headers
    ).json()
    assert sorted(m["metadata"]["n"] for m in even["data"]) == [0, 2, 4]


def _error(response) -> dict:
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]


def test_bad_input_is_a_4xx_naming_the_field(client: TestClient, tenant: TenantKey) -> None:
    h = tenant.headers
    cases = [
        (client.post("/v1/memories", json={"text": ""}, headers=h), "text"),
        (client.post("/v1/memories", json={"text": 42}, headers=h), "text"),
        (client.post("/v1/memories", json={"txt": "typo"}, headers=h), "text"),
        (client.post("/v1/memories", json={"items": []}, headers=h), "items"),
        (
            client.post(
                "/v1/memories",
                json={"items": [{"text": "ok"}, {"text": "ok", "importance": 7}]},
                headers=h,
            ),
            "items[1].importance",
        ),
        (client.post("/v1/memories", json={"text": "x" * 9000}, headers=h), "text"),
        (
            client.post("/v1/memories", json={"text": "x", "metadata": {"bad key!": 1}}, headers=h),
            "metadata",
        ),
        (
            client.post(
                "/v1/memories",
                content=b"{not json",
                headers={**h, "content-type": "application/json"},
            ),
            None,
        ),
        (client.post("/v1/search", json={"query": "x", "top_k": 0}, headers=h), "top_k"),
        (
            client.post("/v1/search", json={"query": "x", "filters": {"user": "u"}}, headers=h),
            "filters.user",
        ),
        (
            client.post(
                "/v1/search", json={"query": "x", "filters": {"metadata": {"a": [1]}}}, headers=h
            ),
            "filters.metadata.a",
        ),
        (client.get("/v1/memories", params={"cursor": "%%%"}, headers=h), "cursor"),
        (client.get("/v1/memories", params={"metadata": "[1"}, headers=h), "metadata"),
        (client.get("/v1/memories", params={"limit": "many"}, headers=h), "limit"),
        (
            client.get("/v1/memories", params={"created_after": "yesterday"}, headers=h),
            "created_after",
        ),
        (client.patch("/v1/memories/nope", json={"text": "x"}, headers=h), "memory_id"),
        (client.delete("/v1/memories", headers=h), "user_id"),
    ]
    for response, field in cases:
        error = _error(response)
        if field is not None:
            assert error.get("field", "").startswith(field), (field, error)
    assert client.get("/v1/memories", headers=h).json()["count"] == 0  # nothing was written


def test_patch_needs_a_field_and_rejects_unknown(client: TestClient, tenant: TenantKey) -> None:
    memory_id = _add(client, tenant, {"text": "x"})["data"][0]["id"]
    assert _error(client.patch(f"/v1/memories/{memory_id}", json={}, headers=tenant.headers))
    err = _error(
        client.patch(f"/v1/memories/{memory_id}", json={"user_id": "z"}, headers=tenant.headers)
    )
    assert err["field"] == "user_id"


def test_auth(client: TestClient, tenant: TenantKey) -> None:
    assert _error(client.get("/v1/memories"))["code"] == "unauthorized"
    assert client.get("/v1/memories").status_code == 401
    assert client.get("/v1/memories", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/v1/memories", headers={"X-API-Key": tenant.key}).status_code == 200
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert client.get("/v1/memories", headers=admin).status_code == 403
    assert client.get("/v1/admin/tenants", headers=tenant.headers).status_code == 403


def test_admin_bootstraps_tenants_and_keys(client: TestClient) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    created = client.post("/v1/admin/tenants", json={"name": "acme", "id": "acme-1"}, headers=admin)
    assert created.status_code == 201
    dup = client.post("/v1/admin/tenants", json={"name": "acme", "id": "acme-1"}, headers=admin)
    assert dup.status_code == 409
    key = client.post("/v1/admin/tenants/acme-1/keys", json={"name": "k"}, headers=admin).json()
    assert key["key"].startswith("msk_") and key["prefix"] == key["key"][:12]
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert client.post("/v1/memories", json={"text": "hello"}, headers=headers).status_code == 201
    listed = client.get("/v1/admin/tenants/acme-1/keys", headers=admin).json()
    assert listed["count"] == 1 and "key" not in listed["data"][0]
    missing = client.post("/v1/admin/tenants/none/keys", json={}, headers=admin)
    assert missing.status_code == 404
