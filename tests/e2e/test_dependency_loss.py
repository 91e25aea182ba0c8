"""PostgreSQL or Redis restarted under load: 503 with Retry-After while away (never a 500,
never a hang), full service after, and every acknowledged write there exactly once.

Each test starts its own PostgreSQL cluster or redis-server (``own_postgres``,
``private_redis``) and a real ``memsvc serve`` over it; the shared servers are never touched.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.e2e.conftest import TenantOnServer, create_tenant
from tests.e2e.stack import private_redis
from tests.e2e.throwaway import own_postgres

__all__ = ["own_postgres", "private_redis"]  # fixtures used below

# No request may take longer than this while a dependency is away: the connect, pool and
# Redis timeouts below (2-3 s) plus scheduling noise on a loaded machine.
REQUEST_BOUND_SECONDS = 15.0
MAX_REQUESTS = 4000  # the load loop is bounded whatever happens


@dataclass
class Outcome:
    kind: str  # "event" or "search"
    content: str
    key: str
    status: int
    seconds: float
    retry_after: str | None
    code: str | None
    at: float


@dataclass
class Load:
    """A thread sending events (each with its own Idempotency-Key), and searches when asked,
    one after another, recording every outcome."""

    url: str
    tenant: TenantOnServer
    search_every: int = 0  # every n-th request is a search (0: none)
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            for n in range(MAX_REQUESTS):
                if self._stop.is_set():
                    return
                if self.search_every and n % self.search_every == self.search_every - 1:
                    self._send(http, "search", f"zebra {n}", f"s-{n}")
                else:
                    self._send(http, "event", f"outage note {n} about zebra {n}", f"e-{n}")

    def _send(self, http: httpx.Client, kind: str, content: str, key: str) -> None:
        started = time.monotonic()
        headers = self.tenant.headers
        if kind == "event":
            body = {"session_id": "s", "user_id": "u", "events": [{"content": content}]}
            reply = http.post("/v1/events", json=body, headers={**headers, "Idempotency-Key": key})
        else:
            body = {"query": content, "filters": {"user_id": "u"}, "top_k": 3}
            reply = http.post("/v1/search", json=body, headers=headers)
        error = reply.json().get("error", {}) if reply.status_code >= 400 else {}
        self.outcomes.append(
            Outcome(
                kind,
                content,
                key,
                reply.status_code,
                time.monotonic() - started,
                reply.headers.get("retry-after"),
                error.get("code"),
                started,
            )
        )

    def wait_for(self, what: str, ok: Callable[[list[Outcome]], bool], timeout: float) -> float:
        """Wait until ``ok(outcomes)``; returns the time (monotonic) it became true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok(list(self.outcomes)):
                return time.monotonic()
            assert self._thread.is_alive(), "the load loop ended early"
            time.sleep(0.05)
        raise AssertionError(
            f"{what} not seen in {timeout}s: {Counter(o.status for o in self.outcomes)}"
        )


def _count(outcomes: list[Outcome], status: int, since: float, kind: str = "event") -> int:
    return sum(o.status == status and o.at >= since and o.kind == kind for o in outcomes)


def _check_refusals(outcomes: list[Outcome], allowed: set[int]) -> None:
    """Only the allowed statuses; every 503 a JSON error with Retry-After; no request hung."""
    statuses = Counter(o.status for o in outcomes)
    assert set(statuses) <= allowed, statuses
    for o in outcomes:
        assert o.seconds < REQUEST_BOUND_SECONDS, o
        if o.status == 503:
            assert o.code == "unavailable" and o.retry_after and int(o.retry_after) >= 1, o


def _listed_contents(url: str, tenant: TenantOnServer) -> Counter[str]:
    contents: Counter[str] = Counter()
    cursor = None
    while True:
        params = {"session_id": "s", "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{url}/v1/events", params=params, headers=tenant.headers, timeout=30)
        assert page.status_code == 200, page.text
        contents.update(e["content"] for e in page.json()["data"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            return contents


def _retry_refused(url: str, tenant: TenantOnServer, outcomes: list[Outcome]) -> int:
    """Send every refused event again with its key (the client's retry); returns how many."""
    refused = [o for o in outcomes if o.kind == "event" and o.status != 201]
    for o in refused:
        body = {"session_id": "s", "user_id": "u", "events": [{"content": o.content}]}
        headers = {**tenant.headers, "Idempotency-Key": o.key}
        reply = httpx.post(f"{url}/v1/events", json=body, headers=headers, timeout=30)
        assert reply.status_code == 201, reply.text
    return len(refused)


def test_postgres_restart_under_load(servers, own_postgres, tmp_path: Path) -> None:
    env = {
        "MEMSVC_DATABASE_URL": own_postgres.url,
        "MEMSVC_DEPENDENCIES__DB_CONNECT_TIMEOUT_SECONDS": "2",
        "MEMSVC_DEPENDENCIES__DB_POOL_TIMEOUT_SECONDS": "3",
    }
    server = servers(tmp_path / "data", env)
    tenant = create_tenant(server.url, "pg-outage")
    load = Load(server.url, tenant)
    load.start()
    try:
        load.wait_for("10 writes", lambda o: _count(o, 201, 0) >= 10, 60)
        own_postgres.stop()
        down = time.monotonic()
        load.wait_for("5 refusals", lambda o: _count(o, 503, down) >= 5, 60)
        ready = httpx.get(f"{server.url}/readyz", timeout=REQUEST_BOUND_SECONDS)
        assert ready.status_code == 503 and ready.headers["retry-after"]
        own_postgres.start()
        up = time.monotonic()
        load.wait_for("10 writes after restart", lambda o: _count(o, 201, up) >= 10, 90)
    finally:
        load.stop()
    outcomes = load.outcomes
    _check_refusals(outcomes, {201, 503})
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    acknowledged = {o.content for o in outcomes if o.status == 201}
    listed = _listed_contents(server.url, tenant)
    assert acknowledged <= set(listed)  # nothing acknowledged was lost
    # A 503 during the outage may have committed (a reply lost with the connection): the retry
    # with its key settles each one exactly once.
    assert _retry_refused(server.url, tenant, outcomes) >= 5
    listed = _listed_contents(server.url, tenant)
    assert set(listed) == {o.content for o in outcomes}
    assert max(listed.values()) == 1, listed.most_common(3)


def test_redis_restart_under_load(servers, private_redis, tmp_path: Path) -> None:
    env = {"MEMSVC_REDIS_URL": private_redis.url, "MEMSVC_DEPENDENCIES__REDIS_TIMEOUT_SECONDS": "1"}
    server = servers(tmp_path / "data", env)
    tenant = create_tenant(server.url, "redis-outage")
    load = Load(server.url, tenant, search_every=3)
    load.start()
    try:
        load.wait_for("10 writes", lambda o: _count(o, 201, 0) >= 10, 60)
        private_redis.proc.stop()
        down = time.monotonic()
        load.wait_for("3 refused searches", lambda o: _count(o, 503, down, "search") >= 3, 60)
        ready = httpx.get(f"{server.url}/readyz", timeout=REQUEST_BOUND_SECONDS)
        assert ready.status_code == 503 and ready.json()["redis"] == "error"
        during = [o.content for o in load.outcomes if o.kind == "event" and o.at >= down]
        private_redis.start()  # empty: it keeps nothing across a restart
        up = time.monotonic()
        load.wait_for("5 searches after restart", lambda o: _count(o, 200, up, "search") >= 5, 90)
    finally:
        load.stop()
    outcomes = load.outcomes
    # Events are durable in SQL with Redis away (201); searches need working memory (503).
    _check_refusals(outcomes, {200, 201, 503})
    assert all(o.status == 201 for o in outcomes if o.kind == "event")
    listed = _listed_contents(server.url, tenant)
    assert set(listed) == {o.content for o in outcomes if o.kind == "event"}
    assert max(listed.values()) == 1
    # Full service: working memory is refilled from the event log (maintenance tick, ~5 s),
    # so an event written while Redis was away is found by search.
    assert during, "no event was written during the outage"
    target = during[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = httpx.post(
            f"{server.url}/v1/search",
            headers=tenant.headers,
            timeout=30,
            json={"query": target, "filters": {"session_id": "s"}, "top_k": 5},
        )
        assert found.status_code == 200, found.text
        if any(target in r["memory"]["text"] for r in found.json()["data"]):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{target!r} (written while Redis was away) is not searchable")
    session = httpx.get(f"{server.url}/v1/sessions/s", headers=tenant.headers, timeout=30).json()
    assert session["working_pieces"] > 0
