"""Webhooks: subscriptions over REST, the outbox written with each change, signed deliveries
to a real receiver process on loopback, retries with backoff, and the recorded attempts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.sdk import Memory
from memsvc.service import MemoryService
from memsvc.webhook_signature import SignatureError, verify
from tests.conftest import make_settings, new_tenant
from tests.webhook_receiver import Receiver, start_receiver

FAST = {"backoff_base_seconds": 0.05, "backoff_max_seconds": 0.2, "poll_seconds": 0.1}
# Tests that send by hand (deliver_due) keep the embedded sender thread asleep.
MANUAL = {**FAST, "poll_seconds": 3600}
ALL = ["memory.added", "memory.updated", "memory.deleted", "memory.invalidated",
       "job.finished", "session.consolidated"]  # fmt: skip


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    started = start_receiver(tmp_path / "receiver")
    yield started
    started.stop()


@pytest.fixture
def service(tmp_path: Path, db_url: str) -> Iterator[MemoryService]:
    svc = build_service(make_settings(tmp_path / "data", db_url, webhooks=MANUAL))
    yield svc
    svc.close()


def _subscribe(client: TestClient, headers: dict, url: str, types=ALL) -> dict:
    created = client.post("/v1/webhooks", json={"url": url, "event_types": types}, headers=headers)
    assert created.status_code == 201, created.text
    return created.json()


def _deliveries(client: TestClient, headers: dict, hook_id: str, **query: str) -> list[dict]:
    got = client.get(f"/v1/webhooks/{hook_id}/deliveries", params=query, headers=headers)
    assert got.status_code == 200, got.text
    return got.json()["data"]


def _drain(service: MemoryService, until, *, timeout: float = 30) -> None:
    """Send what is due until ``until()`` holds (deliveries wait out their backoff)."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "deliveries did not settle"
        service.webhooks.deliver_due()
        time.sleep(0.05)


def test_subscriptions_over_rest(client: TestClient, tenant, other_tenant) -> None:
    h = tenant.headers
    hook = _subscribe(client, h, "http://127.0.0.1:9/hook", ["memory.added"])
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30
    listed = client.get("/v1/webhooks", headers=h).json()
    assert listed["count"] == 1
    assert "secret" not in listed["data"][0]
    assert listed["data"][0]["event_types"] == ["memory.added"]
    # Another tenant neither sees nor deletes it.
    assert client.get("/v1/webhooks", headers=other_tenant.headers).json()["count"] == 0
    path = f"/v1/webhooks/{hook['id']}"
    assert client.delete(path, headers=other_tenant.headers).status_code == 404
    assert client.get(f"{path}/deliveries", headers=other_tenant.headers).status_code == 404
    assert client.delete(path, headers=h).status_code == 204
    assert client.delete(path, headers=h).status_code == 404
    assert client.get("/v1/webhooks", headers=h).json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://169.254.169.254/latest", "event_types": ["memory.added"]}, "url"),
        ({"url": "http://internal.example/x", "event_types": ["memory.added"]}, "url"),
        ({"url": "ftp://127.0.0.1/x", "event_types": ["memory.added"]}, "url"),
        ({"url": "http://user:pw@127.0.0.1/x", "event_types": ["memory.added"]}, "url"),
        ({"url": "http://127.0.0.1/x", "event_types": ["memory.exploded"]}, "event_types"),
        ({"url": "http://127.0.0.1/x", "event_types": []}, "event_types"),
    ],
)
def test_bad_subscriptions_are_refused(client: TestClient, tenant, body, field) -> None:
    refused = client.post("/v1/webhooks", json=body, headers=tenant.headers)
    assert refused.status_code == 422, refused.text
    assert field in json.dumps(refused.json()["error"])
    assert client.get("/v1/webhooks", headers=tenant.headers).json()["count"] == 0


def test_changes_are_written_to_the_outbox_and_delivered_signed(
    client: TestClient, service: MemoryService, tenant, other_tenant, receiver: Receiver
) -> None:
    h = tenant.headers
    hook = _subscribe(client, h, receiver.url, ["memory.added", "memory.updated",
                                                "memory.deleted"])  # fmt: skip
    added = client.post("/v1/memories", json={"text": "I like tea", "user_id": "u"}, headers=h)
    memory_id = added.json()["data"][0]["id"]
    patched = client.patch(f"/v1/memories/{memory_id}", json={"text": "I like coffee"}, headers=h)
    assert patched.status_code == 200
    assert client.delete(f"/v1/memories/{memory_id}", headers=h).status_code == 200
    # Refused writes and other tenants' writes make no event.
    assert client.post("/v1/memories", json={"text": ""}, headers=h).status_code == 422
    client.post("/v1/memories", json={"text": "not theirs"}, headers=other_tenant.headers)
    pending = _deliveries(client, h, hook["id"])
    assert [d["event_type"] for d in reversed(pending)] == [
        "memory.added", "memory.updated", "memory.deleted"
    ]  # fmt: skip
    assert {d["state"] for d in pending} == {"pending"}
    assert receiver.requests() == []  # nothing is sent inside the writes

    _drain(service, lambda: len(receiver.requests()) == 3)
    got = receiver.requests()
    for request in got:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        verify(hook["secret"], request["body"].encode(), headers["memsvc-signature"])
        with pytest.raises(SignatureError):
            verify("whsec_wrong", request["body"].encode(), headers["memsvc-signature"])
        body = json.loads(request["body"])
        assert headers["memsvc-event-id"] == body["id"]
        assert headers["memsvc-event-type"] == body["type"]
        assert body["tenant_id"] == tenant.tenant_id
        assert body["data"]["memory_id"] == memory_id
    bodies = {json.loads(r["body"])["type"]: json.loads(r["body"])["data"] for r in got}
    assert bodies["memory.added"]["memory"]["text"] == "I like tea"
    assert bodies["memory.updated"]["memory"]["text"] == "I like coffee"
    assert bodies["memory.updated"]["previous"]["text"] == "I like tea"
    assert bodies["memory.deleted"]["op"] == "DELETE"
    done = _deliveries(client, h, hook["id"])
    assert {d["state"] for d in done} == {"delivered"}
    assert all(d["attempt_log"][0]["status_code"] == 200 for d in done)
    assert _deliveries(client, h, hook["id"], state="pending") == []


def test_a_failing_receiver_gets_the_delivery_after_retries(
    tmp_path: Path, client: TestClient, service: MemoryService, tenant
) -> None:
    flaky = start_receiver(tmp_path / "flaky", fail_first=2)
    try:
        hook = _subscribe(client, tenant.headers, flaky.url, ["memory.added"])
        client.post("/v1/memories", json={"text": "retry me"}, headers=tenant.headers)
        _drain(service, lambda: [r["status"] for r in flaky.requests()][-1:] == [200])
    finally:
        flaky.stop()
    sent = flaky.requests()
    assert [r["status"] for r in sent] == [500, 500, 200]
    assert len({json.loads(r["body"])["id"] for r in sent}) == 1  # the same event each time
    assert [r["headers"]["Memsvc-Delivery-Attempt"] for r in sent] == ["1", "2", "3"]
    (delivery,) = _deliveries(client, tenant.headers, hook["id"])
    assert delivery["state"] == "delivered" and delivery["attempts"] == 3
    log = delivery["attempt_log"]
    assert [a["outcome"] for a in log] == ["retry", "retry", "delivered"]
    assert [a["status_code"] for a in log] == [500, 500, 200]
    assert "HTTP 500" in log[0]["error"]


def test_deliveries_fail_after_the_last_attempt(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path / "d", db_url, webhooks={**MANUAL, "max_attempts": 2})
    svc = build_service(settings)
    down = start_receiver(tmp_path / "down", fail_first=1000)
    try:
        t = new_tenant(svc)
        with TestClient(create_app(settings, service=svc)) as client:
            hook = _subscribe(client, t.headers, down.url, ["memory.added"])
            client.post("/v1/memories", json={"text": "never lands"}, headers=t.headers)
            _drain(svc, lambda: _deliveries(client, t.headers, hook["id"])[0]["state"] != "pending")
            (delivery,) = _deliveries(client, t.headers, hook["id"])
        assert delivery["state"] == "failed" and delivery["attempts"] == 2
        assert [a["outcome"] for a in delivery["attempt_log"]] == ["retry", "failed"]
        assert len(down.requests()) == 2
    finally:
        down.stop()
        svc.close()


def test_jobs_and_sessions_are_announced(
    client: TestClient, service: MemoryService, tenant, receiver: Receiver
) -> None:
    h = tenant.headers
    _subscribe(client, h, receiver.url, ["job.finished", "session.consolidated",
                                         "memory.added"])  # fmt: skip
    events = [{"role": "user", "content": "I live in Oslo with my dog Bolt."}]
    body = {"events": [{**e, "session_id": "s-1", "user_id": "u"} for e in events]}
    assert client.post("/v1/events", json=body, headers=h).status_code == 201
    closed = client.post("/v1/sessions/s-1/close", headers=h)  # embedded: consolidated now
    assert closed.status_code == 200, closed.text
    _drain(service, lambda: any(json.loads(r["body"])["type"] == "job.finished"
                                for r in receiver.requests()))  # fmt: skip
    _drain(service, lambda: not service.webhooks.deliver_due())
    by_type: dict[str, list[dict]] = {}
    for r in receiver.requests():
        body = json.loads(r["body"])
        by_type.setdefault(body["type"], []).append(body["data"])
    (job,) = by_type["job.finished"]
    assert job["job"]["state"] == "succeeded" and job["job"]["trigger"] == "close"
    (session,) = by_type["session.consolidated"]
    assert session == {"session_id": "s-1", "job_id": job["job"]["id"]}
    # Consolidation's own writes (promoted messages, extracted facts) are memory events too.
    assert by_type["memory.added"]


def test_the_embedded_runtime_delivers_in_the_background(tmp_path: Path) -> None:
    flaky = start_receiver(tmp_path / "flaky", fail_first=1)
    settings = make_settings(tmp_path / "embedded", webhooks=FAST)
    try:
        with Memory(settings=settings) as memory:
            hook = memory.create_webhook(flaky.url, ["memory.added"], description="test")
            assert hook.secret.startswith("whsec_")
            assert [h.id for h in memory.list_webhooks()] == [hook.id]
            memory.add("I like green tea", user_id="u")
            deadline = time.monotonic() + 30
            while [r["status"] for r in flaky.requests()][-1:] != [200]:
                assert time.monotonic() < deadline, "the background sender did not deliver"
                time.sleep(0.1)
            (delivery,) = memory.list_webhook_deliveries(hook.id)
            assert delivery.state == "delivered"
            assert [a.outcome for a in delivery.attempt_log] == ["retry", "delivered"]
            last = flaky.requests()[-1]
            verify(hook.secret, last["body"].encode(), last["headers"]["Memsvc-Signature"])
            memory.delete_webhook(hook.id)
            assert memory.list_webhooks() == []
        # Reopened on the same data, a Memory keeps sending what is pending.
    finally:
        flaky.stop()


def test_signature_verification() -> None:
    from memsvc.webhook_signature import signature_header

    body = b'{"id":"e1"}'
    header = signature_header("whsec_x", body, timestamp=1_700_000_000)
    assert verify("whsec_x", body, header, now=1_700_000_100) == 1_700_000_000
    for bad_body, bad_header, now in [
        (b'{"id":"e2"}', header, 1_700_000_100),  # another body
        (body, header, 1_700_000_000 + 301),  # too old: a replay
        (body, "v1=abc", 1_700_000_000),  # no timestamp
        (body, None, 1_700_000_000),
    ]:
        with pytest.raises(SignatureError):
            verify("whsec_x", bad_body, bad_header, now=now)


def test_a_host_no_longer_allowed_fails_its_deliveries(
    tmp_path: Path, db_url: str, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path / "d", db_url, webhooks=MANUAL)
    svc = build_service(settings)
    try:
        t = new_tenant(svc)
        with TestClient(create_app(settings, service=svc)) as client:
            hook = _subscribe(client, t.headers, receiver.url, ["memory.added"])
            client.post("/v1/memories", json={"text": "held back"}, headers=t.headers)
        narrowed = settings.model_copy(
            update={"webhooks": settings.webhooks.model_copy(update={"allowed_hosts": ["x.io"]})}
        )
        strict = build_service(narrowed)
        try:
            assert strict.webhooks.deliver_due() == 1
            (delivery,) = strict.webhooks.deliveries(t.tenant_id, hook["id"], _params())
        finally:
            strict.close()
        assert delivery.state == "failed" and "no longer allowed" in (delivery.last_error or "")
        assert receiver.requests() == []
    finally:
        svc.close()


def _params():
    from memsvc.schemas.webhooks import WebhookDeliveryListParams

    return WebhookDeliveryListParams()
