"""Idempotency-Key on writes: a retry gets the first reply and writes nothing (SQLite and PG)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.errors import ConflictError
from memsvc.service import IdempotentRequest, MemoryService
from memsvc.settings import Settings
from tests.conftest import ADMIN_KEY, TenantKey, make_settings, new_tenant

EVENTS = {
    "session_id": "s1",
    "user_id": "u",
    "events": [
        {"role": "user", "content": "I adopted a greyhound called Pixel"},
        {"role": "assistant", "content": "Lovely! How old is Pixel?"},
    ],
}


def _keyed(tenant: TenantKey, key: str) -> dict[str, str]:
    return {**tenant.headers, "Idempotency-Key": key}


def _event_count(client: TestClient, tenant: TenantKey) -> int:
    return client.get("/v1/events", params={"session_id": "s1"}, headers=tenant.headers).json()[
        "count"
    ]


@pytest.mark.parametrize("path", ["/v1/events", "/v1/memories"])
def test_retry_gets_the_first_reply_and_writes_nothing(
    client: TestClient, tenant: TenantKey, path: str
) -> None:
    body = EVENTS if path == "/v1/events" else {"items": [{"text": "likes tea", "user_id": "u"}]}
    first = client.post(path, json=body, headers=_keyed(tenant, "retry-1"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(2):
        again = client.post(path, json=body, headers=_keyed(tenant, "retry-1"))
        assert again.status_code == 201
        assert again.content == first.content  # byte for byte
        assert again.headers["idempotent-replayed"] == "true"
    if path == "/v1/events":
        assert _event_count(client, tenant) == 2
    else:
        memories = client.get("/v1/memories", params={"user_id": "u"}, headers=tenant.headers)
        assert memories.json()["count"] == 1
        history = client.get(
            f"/v1/memories/{first.json()['data'][0]['id']}/history", headers=tenant.headers
        )
        assert [h["op"] for h in history.json()["data"]] == ["ADD"]
    # Without the key the same body is a new request (events are appended again).
    if path == "/v1/events":
        assert client.post(path, json=body, headers=tenant.headers).status_code == 201
        assert _event_count(client, tenant) == 4


def test_same_key_other_request_is_refused_naming_the_header(
    client: TestClient, tenant: TenantKey
) -> None:
    assert client.post("/v1/events", json=EVENTS, headers=_keyed(tenant, "k-1")).status_code == 201
    other = {**EVENTS, "events": [{"role": "user", "content": "something else"}]}
    refused = client.post("/v1/events", json=other, headers=_keyed(tenant, "k-1"))
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["field"] == "Idempotency-Key" and error["code"] == "idempotency_key_reused"
    # Another route with that key is another request too.
    on_memories = client.post(
        "/v1/memories", json={"text": "x", "user_id": "u"}, headers=_keyed(tenant, "k-1")
    )
    assert on_memories.status_code == 422
    assert _event_count(client, tenant) == 2


@pytest.mark.parametrize("key", ["", "has space", "é-accent".encode("latin-1"), "x" * 256])
def test_malformed_keys_are_refused_and_change_nothing(
    client: TestClient, tenant: TenantKey, key: str | bytes
) -> None:
    headers = {**tenant.headers, "Idempotency-Key": key}
    refused = client.post("/v1/events", json=EVENTS, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "Idempotency-Key"
    assert _event_count(client, tenant) == 0


def test_keys_are_per_tenant(
    client: TestClient, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    one = client.post("/v1/events", json=EVENTS, headers=_keyed(tenant, "shared-key"))
    two = client.post("/v1/events", json=EVENTS, headers=_keyed(other_tenant, "shared-key"))
    assert one.status_code == two.status_code == 201
    assert "idempotent-replayed" not in two.headers
    assert one.json()["data"][0]["id"] != two.json()["data"][0]["id"]
    assert _event_count(client, tenant) == _event_count(client, other_tenant) == 2


def test_other_writes_replay_their_first_reply(client: TestClient, tenant: TenantKey) -> None:
    created = client.post(
        "/v1/memories", json={"text": "old", "user_id": "u"}, headers=tenant.headers
    ).json()["data"][0]
    url = f"/v1/memories/{created['id']}"
    patch = client.patch(url, json={"text": "new"}, headers=_keyed(tenant, "p-1"))
    again = client.patch(url, json={"text": "new"}, headers=_keyed(tenant, "p-1"))
    assert patch.status_code == again.status_code == 200
    assert again.content == patch.content and again.headers["idempotent-replayed"] == "true"
    deleted = client.delete(url, headers=_keyed(tenant, "d-1"))
    retried = client.delete(url, headers=_keyed(tenant, "d-1"))  # not a 404: the first reply
    assert deleted.status_code == retried.status_code == 200
    assert retried.json() == {"deleted": 1}
    history = client.get(f"{url}/history", headers=tenant.headers).json()["data"]
    assert [h["op"] for h in history] == ["ADD", "UPDATE", "DELETE"]


def test_a_failed_request_frees_its_key(
    client: TestClient, tenant: TenantKey, service: MemoryService
) -> None:
    missing = client.patch("/v1/memories/nope", json={"text": "x"}, headers=_keyed(tenant, "f"))
    assert missing.status_code == 404
    assert service.idempotency.lookup(tenant.tenant_id, "f") is None
    again = client.patch("/v1/memories/nope", json={"text": "x"}, headers=_keyed(tenant, "f"))
    assert again.status_code == 404 and "idempotent-replayed" not in again.headers


def test_a_key_in_flight_is_a_409(
    client: TestClient, tenant: TenantKey, service: MemoryService
) -> None:
    assert service.idempotency.claim(tenant.tenant_id, "busy") is not None  # another request
    created = client.post(
        "/v1/memories", json={"text": "a", "user_id": "u"}, headers=tenant.headers
    ).json()["data"][0]
    for method, path, body in [
        ("PATCH", f"/v1/memories/{created['id']}", {"text": "b"}),
        ("POST", "/v1/events", EVENTS),
    ]:
        busy = client.request(method, path, json=body, headers=_keyed(tenant, "busy"))
        assert busy.status_code == 409, busy.text
        assert busy.json()["error"]["code"] == "idempotency_in_progress"
        assert busy.headers["retry-after"] == "1"
    assert _event_count(client, tenant) == 0
    assert client.get(f"/v1/memories/{created['id']}", headers=tenant.headers).json()["text"] == "a"


def test_a_racing_duplicate_rolls_back(service: MemoryService, tenant: TenantKey) -> None:
    """Two writes with one key that both got past the lookup: the second writes nothing."""
    from memsvc.schemas import MemoryCreate

    request = IdempotentRequest(tenant.tenant_id, "race", "f" * 64)
    items = [MemoryCreate(text="once only", user_id="u")]
    service.memories.add(tenant.tenant_id, items, actor="t", idempotency=request)
    other = [MemoryCreate(text="not written", user_id="u")]
    with pytest.raises(ConflictError) as info:
        service.memories.add(tenant.tenant_id, other, actor="t", idempotency=request)
    assert info.value.code == "idempotency_in_progress"
    from memsvc.schemas import MemoryFilter

    texts = [
        m.text for m in service.memories.list(tenant.tenant_id, MemoryFilter(user_id="u")).data
    ]
    assert texts == ["once only"]


def test_concurrent_duplicates_write_once(client: TestClient, tenant: TenantKey) -> None:
    statuses: list[int] = []
    bodies: list[bytes] = []
    lock = threading.Lock()

    def send() -> None:
        reply = client.post("/v1/events", json=EVENTS, headers=_keyed(tenant, "burst"))
        with lock:
            statuses.append(reply.status_code)
            if reply.status_code == 201:
                bodies.append(reply.content)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    assert len(set(bodies)) == 1
    assert _event_count(client, tenant) == 2


def _service(tmp_path: Path, db_url: str, **idempotency: float) -> MemoryService:
    settings = make_settings(tmp_path / "data", db_url)
    config = settings.idempotency.model_copy(update=idempotency)
    return build_service(settings.model_copy(update={"idempotency": config}))


def test_keys_expire_and_are_purged(tmp_path: Path, db_url: str) -> None:
    service = _service(tmp_path, db_url, ttl_seconds=0.3, purge_interval_seconds=0.1)
    try:
        tenant = new_tenant(service)
        with TestClient(create_app(service.settings, service=service)) as client:
            first = client.post("/v1/events", json=EVENTS, headers=_keyed(tenant, "old"))
            assert service.idempotency.lookup(tenant.tenant_id, "old") is not None
            time.sleep(0.4)
            assert service.idempotency.lookup(tenant.tenant_id, "old") is None  # expired
            assert service.idempotency.purge_expired(now_s=time.monotonic()) == 1
            second = client.post("/v1/events", json=EVENTS, headers=_keyed(tenant, "old"))
            assert second.status_code == 201 and "idempotent-replayed" not in second.headers
            assert second.json()["data"][0]["id"] != first.json()["data"][0]["id"]
            assert _event_count(client, tenant) == 4
    finally:
        service.close()


def test_an_abandoned_claim_is_taken_over_after_its_lock(tmp_path: Path, db_url: str) -> None:
    service = _service(tmp_path, db_url, lock_seconds=0.3)
    try:
        tenant = new_tenant(service)
        assert service.idempotency.claim(tenant.tenant_id, "dead") is not None  # process died
        with TestClient(create_app(service.settings, service=service)) as client:
            body = {"user_id": "u"}
            assert (
                client.post(
                    "/v1/consolidate", json=body, headers=_keyed(tenant, "dead")
                ).status_code
                == 409
            )
            time.sleep(0.4)
            taken = client.post("/v1/consolidate", json=body, headers=_keyed(tenant, "dead"))
            assert taken.status_code == 202, taken.text
            again = client.post("/v1/consolidate", json=body, headers=_keyed(tenant, "dead"))
            assert again.content == taken.content and again.headers["idempotent-replayed"]
    finally:
        service.close()


def test_routes_showing_a_new_api_key_ignore_the_header(client: TestClient) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}", "Idempotency-Key": "admin-1"}
    tenant = client.post("/v1/admin/tenants", json={"name": "n"}, headers=admin)
    assert tenant.status_code == 201
    replayed = client.post("/v1/admin/tenants", json={"name": "n"}, headers=admin)
    assert replayed.content == tenant.content  # one tenant: the first reply
    tenant_id = tenant.json()["id"]
    admin["Idempotency-Key"] = "admin-2"
    keys = [
        client.post(f"/v1/admin/tenants/{tenant_id}/keys", json={}, headers=admin).json()["key"]
        for _ in range(2)
    ]
    assert keys[0] != keys[1]  # never stored, so never replayed


def test_the_kill_hook_is_refused_outside_tests() -> None:
    with pytest.raises(ValueError, match="MEMSVC_ENVIRONMENT=test"):
        Settings(environment="development", test_kill_after_commit_key="k")
