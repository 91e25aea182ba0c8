"""The consolidation pipeline through the service, on SQLite and PostgreSQL (no broker)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from consolidation.dispatch import build_service
from consolidation.pipeline import consolidate_session, run_job
from consolidation.steps.decay import decay_memories
from memsvc.extraction import RulesExtractor
from memsvc.schemas import EventBatch, EventCreate, MemoryCreate, MemoryFilter, SearchRequest
from memsvc.service import MemoryService
from memsvc.service.jobs import create_job, flush_access
from stores.models import MemoryRow, SessionRow
from tests.conftest import TenantKey, make_settings, new_tenant

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
FACT_KINDS = ["fact", "preference", "plan", "event"]
CHAT = [
    ("Caroline", "I live in Oslo with my dog Bolt."),
    ("Melanie", "I love painting sunsets at the lake."),
    ("Caroline", "I went to an LGBTQ support group yesterday and it was so powerful."),
    ("Melanie", "ok"),
    ("Melanie", "My kids love the beach. We go to Cape Cod every summer."),
    ("Caroline", "I'm thinking of studying counseling next year."),
]


def _write(svc: MemoryService, tenant_id: str, session_id: str, chat, start: datetime):
    batch = EventBatch(
        user_id="u",
        session_id=session_id,
        events=[
            EventCreate(speaker=who, content=text, event_time=start + timedelta(minutes=n))
            for n, (who, text) in enumerate(chat)
        ],
    )
    return svc.events.add(tenant_id, batch)


def _memories(svc: MemoryService, tenant_id: str, kinds=None, **filters):
    page = svc.memories.list(
        tenant_id, MemoryFilter(user_id="u", kind=kinds, **filters), limit=1000, order="asc"
    )
    return page.data


def test_close_writes_facts_episode_graph_and_history(service, tenant: TenantKey) -> None:
    t = tenant.tenant_id
    events = _write(service, t, "s1", CHAT, T0)
    closed = service.sessions.close(t, "s1")
    assert closed.state == "consolidated" and closed.promoted_count == 5

    messages = _memories(service, t, ["message"])
    assert len(messages) == 5  # promotion's per-turn memories stay
    facts = _memories(service, t, FACT_KINDS)
    texts = {f.text: f for f in facts}
    went = texts["Caroline went to an LGBTQ support group on 7 May 2023 and it was so powerful."]
    assert went.kind == "event" and went.source_event_ids == [events[2].id]
    assert went.occurred_at == datetime(2023, 5, 7, tzinfo=UTC)
    assert texts["Melanie's kids love the beach."].source_event_ids == [events[4].id]
    for fact in facts:  # provenance is exactly the events whose content it states
        (source,) = fact.source_event_ids
        said = next(e for e in events if e.id == source)
        assert fact.metadata["subject"] in fact.text and said.speaker in fact.text

    (episode,) = _memories(service, t, ["episode"])
    assert episode.text.startswith("Caroline and Melanie, 8 May 2023: ")
    assert set(episode.source_event_ids) <= {e.id for e in events if e.decision == "kept"}
    assert all(f.episode_id == episode.id for f in facts)

    entities = {e.name: e.type for e in service.graph.list_entities(t, user_id="u").data}
    assert entities["Caroline"] == "person" and entities["Oslo"] == "place"
    assert [h.op for h in service.memories.history(t, went.id)] == ["ADD"]

    # Re-running is a no-op: same memories, no new history.
    before = [(m.id, m.text, m.source_event_ids) for m in _memories(service, t)]
    again = consolidate_session(service.deps, t, "s1")
    assert again["add"] == 0 and again["events"] == 0
    assert [(m.id, m.text, m.source_event_ids) for m in _memories(service, t)] == before


def test_a_newer_fact_invalidates_the_older_one(service, tenant: TenantKey) -> None:
    t = tenant.tenant_id
    _write(service, t, "s1", CHAT[:1], T0)
    service.sessions.close(t, "s1")
    moved_at = T0 + timedelta(days=60)
    (moved,) = _write(service, t, "s2", [("Caroline", "I moved to Berlin last month.")], moved_at)
    service.sessions.close(t, "s2")

    (oslo,) = [f for f in _memories(service, t, FACT_KINDS) if "Oslo" in f.text]
    (berlin,) = [f for f in _memories(service, t, FACT_KINDS) if "Berlin" in f.text]
    assert oslo.valid_to == moved_at and berlin.valid_to is None
    assert berlin.text == "Caroline moved to Berlin in June 2023."
    assert [h.op for h in service.memories.history(t, oslo.id)] == ["ADD", "INVALIDATE"]
    assert berlin.source_event_ids == [moved.id]

    def lives(as_of: datetime) -> list[str]:
        request = SearchRequest(
            query="where does Caroline live",
            filters=MemoryFilter(user_id="u", kind=FACT_KINDS, as_of=as_of),
        )
        return [r.memory.text for r in service.recall.search(t, request).data]

    assert any("Oslo" in x for x in lives(T0 + timedelta(days=1)))
    assert not any("Berlin" in x for x in lives(T0 + timedelta(days=1)))
    assert any("Berlin" in x for x in lives(moved_at + timedelta(days=1)))
    assert not any("Oslo" in x for x in lives(moved_at + timedelta(days=1)))

    relations = service.graph.list_relations(t, user_id="u", type_="lives_in").data
    assert {(r.target.name, r.valid_to) for r in relations} == {
        ("Oslo", moved_at),
        ("Berlin", None),
    }
    current = service.graph.list_relations(t, user_id="u", type_="lives_in", as_of=moved_at).data
    assert [r.target.name for r in current] == ["Berlin"]
    caroline = next(e for e in service.graph.list_entities(t, name="caroline").data)
    detail = service.graph.get_entity(t, caroline.id)
    assert {"Oslo", "Berlin"} <= {n.entity.name for n in detail.neighbours}
    assert {f.id for f in detail.facts} >= {oslo.id, berlin.id}


def test_search_fuses_graph_neighbours(service, tenant: TenantKey) -> None:
    t = tenant.tenant_id
    _write(service, t, "s1", CHAT, T0)
    service.sessions.close(t, "s1")
    found = service.recall.search(
        t, SearchRequest(query="what about Bolt?", filters=MemoryFilter(user_id="u"))
    ).data
    assert "Bolt" in found[0].memory.text
    # The fact about Bolt is near the query's entity in the graph: fused with a graph score.
    # (It restates the message's event, so it may come after results that bring new events.)
    fact = next(r for r in found if r.memory.kind != "message" and "Bolt" in r.memory.text)
    assert fact.graph_score is not None and fact.graph_score > 0


def test_two_runs_at_once_yield_the_same_memory(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url, consolidation={"batch_events": 3})
    one, two = build_service(settings), build_service(settings)
    try:
        t = new_tenant(one).tenant_id
        chat = [
            ("Ann", f"I visited city number {n} in Spain with my friend Jo.") for n in range(12)
        ]
        _write(one, t, "s", chat, T0)
        results: list[Counter] = []

        def run(svc: MemoryService) -> None:
            results.append(consolidate_session(svc.deps, t, "s"))

        threads = [threading.Thread(target=run, args=(svc,)) for svc in (one, two)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(results) == 2
        facts = _memories(one, t, FACT_KINDS)
        keys = [(f.text, tuple(f.source_event_ids)) for f in facts]
        assert len(keys) == len(set(keys)) == 12  # nothing lost, nothing twice
        assert sum(r["events"] for r in results) == 12  # every batch committed exactly once
        assert len(_memories(one, t, ["message"])) == 12
        with one.deps.sessions() as session:
            row = session.get(SessionRow, (t, "s"))
            assert row.extracted_count == row.kept_count == 12
    finally:
        one.close()
        two.close()


def test_decay_archives_and_restore_brings_back(service, tenant: TenantKey) -> None:
    t = tenant.tenant_id
    add = service.memories.add
    (old,) = add(t, [MemoryCreate(text="the old locker code is 4711", user_id="u")], actor="test")
    (fresh,) = add(t, [MemoryCreate(text="the new locker code is 1234", user_id="u")], actor="test")
    with service.deps.sessions.begin() as session:
        session.execute(
            update(MemoryRow)
            .where(MemoryRow.id == old.id)
            .values(created_at=datetime.now(UTC) - timedelta(days=400))
        )
    counts = decay_memories(service.deps, tenant_id=t)
    assert counts["archived"] == 1
    request = SearchRequest(query="locker code", filters=MemoryFilter(user_id="u"))
    assert [r.memory.id for r in service.recall.search(t, request).data] == [fresh.id]
    assert [m.id for m in _memories(service, t)] == [fresh.id]
    archived = _memories(service, t, include_archived=True)
    assert {m.id for m in archived} == {old.id, fresh.id}
    assert next(m for m in archived if m.id == old.id).archived_at is not None
    with_archived = request.model_copy(
        update={"filters": MemoryFilter(user_id="u", include_archived=True)}
    )
    assert old.id in {r.memory.id for r in service.recall.search(t, with_archived).data}

    restored = service.memories.restore(t, old.id, actor="test")
    assert restored.archived_at is None and restored.strength == 1.0
    assert [h.op for h in service.memories.history(t, old.id)] == ["ADD", "ARCHIVE", "RESTORE"]
    assert old.id in {r.memory.id for r in service.recall.search(t, request).data}
    # Retrieval reinforces: counted in memory, written in a batch.
    flush_access(service.deps)
    assert service.memories.get(t, old.id).access_count >= 1
    assert service.memories.delete_all(t, MemoryFilter(user_id="u"), actor="test") == 2


# Eight distinct turns that overflow a 64-token working memory at once.
CHESS = [("Ann", f"I play chess with my friend number {n} in the park.") for n in range(8)]


def _overflowing(tmp_path: Path, db_url: str, **consolidation: float) -> MemoryService:
    """A service whose working memory overflows on CHESS (one topic segment per turn)."""
    settings = make_settings(
        tmp_path,
        db_url,
        working={"token_budget": 64, "segment_similarity": 0.95},
        consolidation=consolidation,
    )
    return build_service(settings)


def _wait_for_facts(svc: MemoryService, tenant_id: str, failure: str) -> None:
    deadline = time.monotonic() + 30
    while not _memories(svc, tenant_id, FACT_KINDS):
        assert time.monotonic() < deadline, failure
        time.sleep(0.05)


def test_overflow_consolidates_in_the_background_and_keeps_working_memory(
    tmp_path: Path, db_url: str
) -> None:
    svc = _overflowing(tmp_path, db_url)
    try:
        t = new_tenant(svc).tenant_id
        _write(svc, t, "s", CHESS, T0)
        session = svc.sessions.get(t, "s")
        assert 0 < session.promoted_count < 8 and session.working_pieces > 0
        deadline = time.monotonic() + 30
        while svc.sessions.get(t, "s").promoted_count > len(_memories(svc, t, FACT_KINDS)):
            assert time.monotonic() < deadline, "overflow job did not run"
            time.sleep(0.05)
        assert svc.sessions.get(t, "s").working_pieces == session.working_pieces
    finally:
        svc.close()


def test_background_consolidation_waits_while_requests_are_served(
    tmp_path: Path, db_url: str
) -> None:
    """Embedded, an overflow job runs in sleep time: not while a request is in flight."""
    svc = _overflowing(tmp_path, db_url, yield_quiet_seconds=0.2, yield_max_seconds=60)
    try:
        t = new_tenant(svc).tenant_id
        with svc.runtime.activity.request():  # a long request, e.g. another client's search
            _write(svc, t, "s", CHESS, T0)
            assert svc.sessions.get(t, "s").promoted_count > 0
            time.sleep(1.0)
            assert _memories(svc, t, FACT_KINDS) == [], "ran during a request"
        _wait_for_facts(svc, t, "the job did not run once requests paused")
        # On a request's own thread nothing waits: closing a session consolidates it in the
        # request, while another request is in flight (waiting would take yield_max_seconds).
        _write(svc, t, "s2", CHAT, T0)
        with svc.runtime.activity.request():
            started = time.monotonic()
            assert svc.sessions.close(t, "s2").state == "consolidated"
            assert time.monotonic() - started < 30
    finally:
        svc.close()


def test_background_consolidation_is_not_starved_by_requests(tmp_path: Path, db_url: str) -> None:
    svc = _overflowing(tmp_path, db_url, yield_quiet_seconds=0.2, yield_max_seconds=0.3)
    try:
        t = new_tenant(svc).tenant_id
        with svc.runtime.activity.request():
            _write(svc, t, "s", CHESS, T0)
            _wait_for_facts(svc, t, "starved by a request that never ends")
    finally:
        svc.close()


def test_idle_sessions_are_consolidated_by_the_embedded_tick(tmp_path: Path, db_url: str) -> None:
    svc = build_service(make_settings(tmp_path, db_url, session_idle_seconds=0.05))
    try:
        t = new_tenant(svc).tenant_id
        _write(svc, t, "s", CHAT, T0)
        time.sleep(0.1)
        svc.maintenance_tick()
        assert svc.sessions.get(t, "s").state == "consolidated"
        assert len(_memories(svc, t, FACT_KINDS)) >= 4
        svc.maintenance_tick()  # nothing left: no new job
        from stores.models import JobRow

        with svc.deps.sessions() as session:
            jobs = list(session.scalars(select(JobRow).where(JobRow.tenant_id == t)))
        assert [(j.trigger, j.state) for j in jobs] == [("idle", "succeeded")]
    finally:
        svc.close()


class _Boom(RulesExtractor):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def extract(self, events, guide=None):
        raise self.error


def test_job_errors_are_recorded(service, tenant: TenantKey) -> None:
    t = tenant.tenant_id
    _write(service, t, "s", CHAT, T0)
    job = create_job(service.deps, t, "request", {"session_id": "s"})
    assert run_job(service.deps, job.id, extractor=_Boom(ValueError("bad input"))) == "failed"
    failed = service.jobs.get(t, job.id)
    assert failed.state == "failed" and failed.errors[0]["step"] == "extract"
    assert "ValueError: bad input" in failed.errors[0]["error"]

    retry = create_job(service.deps, t, "request", {"session_id": "s"})
    transient = OperationalError("SELECT 1", {}, Exception("connection reset"))
    with pytest.raises(OperationalError):
        run_job(service.deps, retry.id, extractor=_Boom(transient))
    queued = service.jobs.get(t, retry.id)
    assert queued.state == "queued" and queued.attempts == 1 and queued.errors
    assert run_job(service.deps, retry.id) == "succeeded"  # the retry resumes the work
    done = service.jobs.get(t, retry.id)
    assert done.attempts == 2 and done.counts["add"] >= 4 and done.finished_at is not None
