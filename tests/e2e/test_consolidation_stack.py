"""The stack for real: uvicorn API (``memsvc serve``), Celery worker and beat over a private
Redis and PostgreSQL. Idle consolidation end to end, a worker killed mid-job, Redis restarted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from memsvc import MemoryClient
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import start_server
from tests.e2e.stack import Stack, fresh_pg_url, private_redis, stack_env, wait_for

__all__ = ["fresh_pg_url", "private_redis"]  # fixtures used below

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
FACT_KINDS = ["fact", "preference", "plan", "event"]
CHAT = [
    ("Caroline", "I live in Oslo with my dog Bolt."),
    ("Melanie", "I love painting sunsets at the lake."),
    ("Caroline", "I went to an LGBTQ support group yesterday and it was so powerful."),
    ("Melanie", "My kids love the beach. We go to Cape Cod every summer."),
]


def _tenant_key(url: str) -> str:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    tenant = httpx.post(f"{url}/v1/admin/tenants", json={"name": "stack"}, headers=admin).json()
    return httpx.post(f"{url}/v1/admin/tenants/{tenant['id']}/keys", json={}, headers=admin).json()[
        "key"
    ]


def _events(chat, start: datetime) -> list[dict]:
    return [
        {"speaker": who, "content": text, "event_time": (start + timedelta(minutes=n)).isoformat()}
        for n, (who, text) in enumerate(chat)
    ]


@pytest.fixture
def stack(tmp_path: Path):
    started = Stack(tmp_path, {})
    yield started
    started.stop()


def test_idle_sessions_are_consolidated_by_worker_and_beat(
    stack: Stack, private_redis, fresh_pg_url: str, tmp_path: Path
) -> None:
    stack.env = stack_env(fresh_pg_url, private_redis.url)
    stack.worker(), stack.beat()
    api = start_server(tmp_path / "api", stack.env)
    stack.procs.append(api)  # type: ignore[arg-type] - stopped like the others
    key = _tenant_key(api.url)
    with MemoryClient(api.url, key, timeout=30) as client:
        client.add_events(_events(CHAT, T0), user_id="caroline", session_id="s1")
        (moved,) = client.add_events(
            [{"speaker": "Caroline", "content": "I moved to Berlin last month.",
              "event_time": (T0 + timedelta(days=60)).isoformat()}],
            user_id="caroline", session_id="s2",
        )  # fmt: skip

        def consolidated() -> bool:
            states = [client.get_session(s).state for s in ("s1", "s2")]
            return states == ["consolidated", "consolidated"]

        wait_for(consolidated, timeout=90, what="idle consolidation", logs=stack.logs)
        facts = client.get_all(user_id="caroline", filters={"kind": FACT_KINDS}).data
        by_text = {f.text: f for f in facts}
        assert (
            "Caroline went to an LGBTQ support group on 7 May 2023 and it was so powerful."
            in by_text
        )
        oslo = by_text["Caroline lives in Oslo with Caroline's dog Bolt."]
        berlin = by_text["Caroline moved to Berlin in June 2023."]
        assert oslo.valid_to == T0 + timedelta(days=60) and berlin.valid_to is None
        assert berlin.source_event_ids == [moved.id]
        assert [h.op for h in client.history(oslo.id)] == ["ADD", "INVALIDATE"]
        episodes = client.get_all(user_id="caroline", filters={"kind": "episode"}).data
        assert episodes and episodes[0].text.startswith("Caroline and Melanie, 8 May 2023")
        messages = client.get_all(user_id="caroline", filters={"kind": "message"}).data
        assert len(messages) == 5
        names = {e.name: e.type for e in client.list_entities(user_id="caroline").data}
        assert {"Caroline", "Melanie", "Oslo", "Berlin"} <= set(names)
        now = client.list_relations(user_id="caroline", type="lives_in", as_of=datetime.now(UTC))
        assert [r.target.name for r in now.data] == ["Berlin"]
        hits = client.search("where does Caroline live now?", user_id="caroline",
                             filters={"kind": FACT_KINDS, "as_of": datetime.now(UTC)})  # fmt: skip
        assert "Oslo" not in " ".join(h.memory.text for h in hits)


def _facts_consistent(pg_url: str, tenant_events: int) -> tuple[int, int, int]:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as connection:
            facts, distinct = connection.execute(
                text(
                    "SELECT count(*), count(DISTINCT (text, CAST(source_event_ids AS TEXT))) "
                    "FROM memories WHERE kind = 'event' AND deleted_at IS NULL"
                )
            ).one()
            messages = connection.execute(
                text("SELECT count(*) FROM memories WHERE kind = 'message'")
            ).scalar_one()
    finally:
        engine.dispose()
    return int(facts), int(distinct), int(messages)


def test_worker_killed_mid_job_resumes_without_loss_or_duplicates(
    stack: Stack, private_redis, fresh_pg_url: str, tmp_path: Path
) -> None:
    stack.env = stack_env(
        fresh_pg_url,
        private_redis.url,
        MEMSVC_SESSION_IDLE_SECONDS="3600",  # only the explicit job runs
        MEMSVC_CONSOLIDATION__BATCH_EVENTS="2",
        MEMSVC_WORKING__TOKEN_BUDGET="1000000",
    )
    worker = stack.worker()
    stack.beat()
    api = start_server(tmp_path / "api", stack.env)
    stack.procs.append(api)  # type: ignore[arg-type]
    key = _tenant_key(api.url)
    n = 300
    chat = [("Ann", f"I visited museum number {k} in Madrid yesterday.") for k in range(n)]
    with MemoryClient(api.url, key, timeout=60) as client:
        client.add_events(_events(chat, T0), user_id="ann", session_id="big")
        job = client.consolidate(session_id="big")

        def midway() -> bool:
            current = client.get_job(job.id)
            assert current.state != "succeeded", "finished before it could be killed"
            return current.counts.get("events", 0) >= 10

        wait_for(midway, timeout=60, what="the job to get going", logs=stack.logs)
        worker.kill()  # SIGKILL: no cleanup, the task is neither acked nor finished
        killed = client.get_job(job.id)
        assert killed.state == "running" and killed.counts["events"] < n
        stack.worker()  # a new worker: the job comes back (visibility timeout / stale scan)

        def finished() -> bool:
            return client.get_job(job.id).state == "succeeded"

        wait_for(finished, timeout=120, what="the job to resume", logs=stack.logs)
        done = client.get_job(job.id)
        assert done.attempts >= 2
        session = client.get_session("big")
        assert session.promoted_count == n and session.working_pieces == 0
    facts, distinct, messages = _facts_consistent(fresh_pg_url, n)
    assert (facts, distinct, messages) == (n, n, n)


def test_redis_restart_loses_no_events_and_the_backlog_is_consolidated(
    stack: Stack, private_redis, fresh_pg_url: str, tmp_path: Path
) -> None:
    stack.env = stack_env(fresh_pg_url, private_redis.url)
    stack.worker(), stack.beat()
    api = start_server(tmp_path / "api", stack.env)
    stack.procs.append(api)  # type: ignore[arg-type]
    key = _tenant_key(api.url)
    with MemoryClient(api.url, key, timeout=30) as client:
        private_redis.kill()
        # Redis is gone: the API still accepts events (durable in SQL before the answer).
        written = client.add_events(_events(CHAT, T0), user_id="caroline", session_id="down")
        assert [e.decision for e in written] == ["kept"] * 4
        assert client.get_events(session_id="down").count == 4
        private_redis.start()  # empty: whatever Redis held is gone

        def consolidated() -> bool:
            return client.get_session("down").state == "consolidated"

        wait_for(consolidated, timeout=120, what="the backlog after the restart", logs=stack.logs)
        facts = client.get_all(user_id="caroline", filters={"kind": FACT_KINDS}).data
        assert {tuple(f.source_event_ids) for f in facts} <= {(e.id,) for e in written}
        assert len(facts) >= 4
        assert len(client.get_all(user_id="caroline", filters={"kind": "message"}).data) == 4
