"""Working memory over time: overflow, idleness, restarts, Redis, concurrent writers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consolidation.dispatch import build_service
from memsvc.schemas import EventBatch, EventCreate, EventFilter, MemoryFilter, SearchRequest
from memsvc.service import MemoryService
from stores.short_term import RedisShortTermStore
from tests.conftest import TenantKey, make_settings, new_tenant

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def _batch(session_id: str, texts: list[str], start: int = 0, user: str = "u") -> EventBatch:
    return EventBatch(
        user_id=user,
        session_id=session_id,
        events=[
            EventCreate(content=t, speaker="Ann", event_time=T0 + timedelta(minutes=start + n))
            for n, t in enumerate(texts)
        ],
    )


TOPICS = [
    f"Ann talked about topic number {n} and the {w} she likes"
    for n, w in enumerate(
        ["jazz", "tennis", "sushi", "Lisbon", "chess", "roses", "kayaks", "poetry"]
    )
]


def test_overflow_promotes_oldest_segments(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(
        tmp_path, db_url, working={"token_budget": 64, "segment_similarity": 0.95}
    )
    svc = build_service(settings)
    try:
        t = new_tenant(svc)
        svc.events.add(t.tenant_id, _batch("s", TOPICS))
        session = svc.sessions.get(t.tenant_id, "s")
        assert 0 < session.promoted_count < len(TOPICS)
        assert session.working_tokens <= 64 or session.working_pieces == 1
        long_term = svc.memories.list(t.tenant_id, MemoryFilter(user_id="u"), order="asc").data
        assert [m.text for m in long_term] == [f"Ann: {x}" for x in TOPICS[: len(long_term)]]
        pieces = svc.deps.short_term.pieces(t.tenant_id, "s")
        assert [p.text for p in pieces] == [f"Ann: {x}" for x in TOPICS[len(long_term) :]]
    finally:
        svc.close()


def test_idle_sessions_are_consolidated_by_the_background_tick(tmp_path: Path, db_url: str) -> None:
    svc = build_service(make_settings(tmp_path, db_url, session_idle_seconds=0.05))
    try:
        t = new_tenant(svc)
        svc.events.add(t.tenant_id, _batch("s", TOPICS[:3]))
        assert svc.sessions.get(t.tenant_id, "s").state in ("active", "idle")
        import time

        time.sleep(0.1)
        assert svc.sessions.get(t.tenant_id, "s").state == "idle"
        svc.maintenance_tick()
        session = svc.sessions.get(t.tenant_id, "s")
        assert session.state == "consolidated" and session.promoted_count == 3
    finally:
        svc.close()


def test_restart_rebuilds_working_memory_from_the_event_log(settings, tenant: TenantKey) -> None:
    first = build_service(settings)
    try:
        first.events.add(tenant.tenant_id, _batch("s", TOPICS[:4]))
    finally:
        first.close()
    second = build_service(settings)  # a fresh in-process working memory
    try:
        assert len(second.deps.short_term.pieces(tenant.tenant_id, "s")) == 4
        hits = second.recall.search(
            tenant.tenant_id, SearchRequest(query="sushi", filters=MemoryFilter(user_id="u"))
        )
        assert hits.data[0].tier == "short_term" and "sushi" in hits.data[0].memory.text
    finally:
        second.close()


@pytest.fixture
def redis_service(tmp_path: Path, pg_url: str, redis_url: str):
    svc = build_service(make_settings(tmp_path, pg_url, redis_url=redis_url))
    yield svc
    svc.close()


def test_redis_working_memory_is_shared_and_survives_a_flush(
    redis_service: MemoryService, tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    t = new_tenant(redis_service)
    assert isinstance(redis_service.deps.short_term, RedisShortTermStore)
    redis_service.events.add(t.tenant_id, _batch("s", TOPICS[:3]))
    other = build_service(make_settings(tmp_path / "other", pg_url, redis_url=redis_url))
    try:
        # Another process over the same Redis sees the same working memory at once.
        assert [p.text for p in other.deps.short_term.pieces(t.tenant_id, "s")] == [
            f"Ann: {x}" for x in TOPICS[:3]
        ]
        # Redis loses everything (restart without persistence): events are still in SQL,
        # writes keep working, and the backlog is rebuilt and consolidated.
        other.deps.short_term.clear(t.tenant_id, "s")
        redis_service.events.add(t.tenant_id, _batch("s", TOPICS[3:5], start=10))
        assert len(other.deps.short_term.pieces(t.tenant_id, "s")) == 2
        from memsvc.service.working import rebuild_short_term

        rebuild_short_term(other.deps)
        assert len(other.deps.short_term.pieces(t.tenant_id, "s")) == 5
        closed = other.sessions.close(t.tenant_id, "s")
        assert closed.promoted_count == 5 and closed.working_pieces == 0
    finally:
        other.close()


def test_concurrent_writers_lose_nothing_and_keep_event_time_order(
    redis_service: MemoryService,
) -> None:
    t = new_tenant(redis_service)
    writers, per_writer = 4, 15
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for n in range(per_writer):
                # Interleaved event times across writers; each writer sends in its own order.
                minute = n * writers + w
                redis_service.events.add(
                    t.tenant_id,
                    EventBatch(
                        session_id="busy",
                        user_id="u",
                        events=[
                            EventCreate(
                                content=f"writer {w} message {n} about item {minute}",
                                event_time=T0 + timedelta(minutes=minute),
                            )
                        ],
                    ),
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    total = writers * per_writer
    session = redis_service.sessions.get(t.tenant_id, "busy")
    assert session.event_count == total and session.kept_count == total
    pieces = redis_service.deps.short_term.pieces(t.tenant_id, "busy")
    promoted = session.promoted_count
    assert len(pieces) + promoted == total
    times = [p.event_time for p in pieces]
    assert times == sorted(times)
    events = redis_service.events.list(t.tenant_id, EventFilter(session_id="busy"), limit=1000)
    assert events.count == total
