"""Exactly once across a crash: a server killed (SIGKILL) after committing a write and before
replying; the client's retry with the same Idempotency-Key gets the write's reply from another
server over the same PostgreSQL, and nothing is written twice. Events are sent with httpx, the
memories by the SDK (whose own retries meet the dead server, then a new client retries)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from memsvc import MemoryClient
from memsvc.errors import TransportError
from tests.e2e.conftest import ServerProcess, create_tenant

CRASH_KEY = "crash-after-commit"
EVENTS = {
    "session_id": "s1",
    "user_id": "u",
    "events": [
        {"role": "user", "content": "the spare key is under the blue flowerpot"},
        {"role": "assistant", "content": "noted: blue flowerpot"},
    ],
}
MEMORIES = ["allergic to peanuts", "likes green tea"]
LISTINGS = {"/v1/events": "/v1/events?session_id=s1", "/v1/memories": "/v1/memories?user_id=u"}


def _ids(url: str, path: str, headers: dict[str, str]) -> list[str]:
    listed = httpx.get(url + LISTINGS[path], headers=headers, timeout=10)
    assert listed.status_code == 200, listed.text
    return sorted(item["id"] for item in listed.json()["data"])


def test_retry_after_kill_between_commit_and_reply(servers, pg_url: str, tmp_path: Path) -> None:
    env = {"MEMSVC_DATABASE_URL": pg_url, "MEMSVC_TEST_KILL_AFTER_COMMIT_KEY": CRASH_KEY}
    victim = servers(tmp_path / "victim-events", env)
    events_tenant = create_tenant(victim.url, "crash-events")
    headers = {**events_tenant.headers, "Idempotency-Key": CRASH_KEY}
    with pytest.raises(httpx.TransportError):  # no reply: the process died
        httpx.post(victim.url + "/v1/events", json=EVENTS, headers=headers, timeout=60)
    _assert_killed(victim)

    victim = servers(tmp_path / "victim-memories", env)
    memories_tenant = create_tenant(victim.url, "crash-memories")
    client = MemoryClient(victim.url, memories_tenant.key, retry_backoff=0.05)
    with client, pytest.raises(TransportError):  # its retries found the server gone
        client.add(MEMORIES, user_id="u", idempotency_key=CRASH_KEY)
    _assert_killed(victim)

    survivor = servers(tmp_path / "survivor", {"MEMSVC_DATABASE_URL": pg_url})
    committed = _ids(survivor.url, "/v1/events", events_tenant.headers)
    assert len(committed) == 2  # the write committed before the kill
    retry = httpx.post(survivor.url + "/v1/events", json=EVENTS, headers=headers, timeout=60)
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert sorted(item["id"] for item in retry.json()["data"]) == committed
    assert _ids(survivor.url, "/v1/events", events_tenant.headers) == committed

    committed = _ids(survivor.url, "/v1/memories", memories_tenant.headers)
    assert len(committed) == 2
    with MemoryClient(survivor.url, memories_tenant.key) as client:
        replayed = client.add(MEMORIES, user_id="u", idempotency_key=CRASH_KEY)
    assert sorted(m.id for m in replayed) == committed
    assert _ids(survivor.url, "/v1/memories", memories_tenant.headers) == committed


def _assert_killed(victim: ServerProcess) -> None:
    assert victim.process.wait(timeout=30) == -signal.SIGKILL, victim.log()
    assert "test fault: killing the process after committing" in victim.log()
