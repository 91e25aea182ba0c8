"""Purge erases every trace of a scope: a canary written through every path is found nowhere
afterwards (SQLite files and WAL, PostgreSQL rows and relation files, Redis, the blob store,
the index snapshot), and another user's data is untouched. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.schemas import EventBatch, EventCreate, MemoryFilter, SearchRequest
from memsvc.service import MemoryService
from stores.models import PurgeAuditRow
from stores.purge import sha256_hex
from stores.short_term import RedisShortTermStore
from tests.conftest import TenantKey, new_tenant
from tests.integration.kv.crafted import container

T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def _canary() -> str:
    # Letters only, capitalised: the rules extractor takes it for a place name (an entity).
    letters = "".join("abcdefghijklmnop"[int(c, 16)] for c in uuid.uuid4().hex[:12])
    return "Zq" + letters


@pytest.fixture
def canary() -> str:
    return _canary()


@pytest.fixture
def service(settings, redis_url: str) -> Iterator[MemoryService]:
    """The embedded service with its working memory in the real Redis (own key prefix)."""
    svc = build_service(settings)
    svc.deps._short_term = RedisShortTermStore(redis_url, prefix=f"memsvc:st:{uuid.uuid4().hex}")
    yield svc
    svc.close()


def _container(session_id: str, seed: int) -> bytes:
    return container(
        T=8,
        seed=seed,
        token_ids=list(range(8)),
        origin={"kind": "session", "session_id": session_id},
    )


def _store_kv(svc: MemoryService, tenant_id: str, session_id: str, body: bytes, **kw):
    path = svc.deps.blobs.new_tmp_file()
    path.write_bytes(body)
    return svc.kv.store_file(tenant_id, path, kind="episodic", session_id=session_id, **kw)


def _write_user(
    svc: MemoryService, client: TestClient, tk: TenantKey, user: str, word: str, seed: int
) -> dict:
    """One user's data through every path, each holding ``word``."""
    t = tk.tenant_id
    session_closed, session_open = f"s1-{word}", f"s2-{word}"
    # memories over REST with an idempotency key: the stored reply holds the text
    reply = client.post(
        "/v1/memories",
        json={"text": f"My locker code word is {word}.", "user_id": user,
              "metadata": {"note": word}},
        headers={**tk.headers, "Idempotency-Key": f"key-{uuid.uuid4().hex}"},
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    # history through an update: the old text stays in the history until the purge
    changed = client.post(
        "/v1/memories",
        json={"text": f"I drink {word} tea every morning.", "user_id": user},
        headers=tk.headers,
    ).json()["data"][0]["id"]
    client.patch(f"/v1/memories/{changed}", json={"text": "I drink green tea."}, headers=tk.headers)
    # chat turns, consolidated into facts, an episode and entities
    chat = [
        ("Caroline", f"I live in {word} with my dog Bolt."),
        ("Melanie", f"I love painting sunsets at the lake near {word}."),
        ("Caroline", "I'm thinking of studying counseling next year."),
    ]
    batch = EventBatch(
        user_id=user, agent_id="helper", session_id=session_closed,
        events=[EventCreate(speaker=who, content=said, event_time=T0 + timedelta(minutes=n),
                            metadata={"note": word})
                for n, (who, said) in enumerate(chat)],
    )  # fmt: skip
    svc.events.add(t, batch)
    closed = svc.sessions.close(t, session_closed)
    assert closed.state == "consolidated"
    # an open session: its turns sit in working memory (Redis)
    svc.events.add(
        t,
        EventBatch(
            user_id=user, session_id=session_open,
            events=[EventCreate(speaker="Caroline", content=f"Tomorrow I fly to {word} again.",
                                event_time=T0 + timedelta(hours=2))],
        ),
    )  # fmt: skip
    assert svc.deps.short_term.pieces(t, session_open)
    # a KV cache of the session: the canary in its session id (so in the blob) and metadata
    kv = _store_kv(svc, t, session_closed, _container(session_closed, seed), metadata={"n": word})
    return {"kv": kv, "session": session_closed}


def _files_with(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes().lower():
            found.append(str(path))
    return found


def _redis_hits(url: str, needle: str) -> list[str]:
    client = redis.Redis.from_url(url, decode_responses=False)
    hits = []
    try:
        for key in client.scan_iter(count=500):
            kind = client.type(key).decode()
            if kind == "string":
                values = [client.get(key) or b""]
            elif kind == "hash":
                values = [k + b"=" + v for k, v in client.hgetall(key).items()]
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "zset":
                values = list(client.zrange(key, 0, -1))
            elif kind == "list":
                values = list(client.lrange(key, 0, -1))
            else:
                values = []
            if any(needle.encode() in v.lower() for v in [key, *values]):
                hits.append(key.decode(errors="replace"))
    finally:
        client.close()
    return hits


def _pg_hits(url: str, needle: str) -> tuple[list[str], list[str]]:
    """(tables whose rows' text holds the needle, relation files that hold it)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            tables = c.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
            rows = [
                t
                for t in list(tables)
                if c.execute(
                    text(f'SELECT count(*) FROM "{t}" r WHERE lower(r::text) LIKE :n'),
                    {"n": f"%{needle}%"},
                ).scalar_one()
            ]
            c.execute(text("CHECKPOINT"))
            data_dir = Path(c.execute(text("SHOW data_directory")).scalar_one())
            paths = c.execute(
                text(
                    "SELECT pg_relation_filepath(c.oid) || ' ' || c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname IN ('public', 'pg_toast') "
                    "AND c.relkind IN ('r', 'i', 't') AND pg_relation_filepath(c.oid) IS NOT NULL"
                )
            ).scalars()
            files = []
            for line in paths:
                rel, _, name = line.partition(" ")
                base = data_dir / rel
                for part in [base, *base.parent.glob(base.name + ".*")]:
                    if part.is_file() and needle.encode() in part.read_bytes().lower():
                        files.append(f"{name} {part}")
    finally:
        engine.dispose()
    return rows, files


def _sqlite_hits(db_url: str, needle: str) -> list[str]:
    """The database file and its -wal and -shm files that hold the needle."""
    db = Path(db_url.split("///", 1)[1])
    files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert files
    return [str(p) for p in files if needle.encode() in p.read_bytes().lower()]


def _searchable(svc: MemoryService, tenant_id: str, user: str, query: str) -> list[str]:
    request = SearchRequest(query=query, filters=MemoryFilter(user_id=user))
    return [r.memory.text for r in svc.recall.search(tenant_id, request).data]


def test_a_purged_user_leaves_no_trace(
    service: MemoryService, tenant: TenantKey, db_url: str, redis_url: str, canary: str
) -> None:
    t = tenant.tenant_id
    user_a, user_b, other = f"user-{canary}", "user-b", _canary()
    needle = canary.lower()
    with TestClient(create_app(service.settings, service=service)) as client:
        # a webhook subscription: every memory event's delivery body holds the memory's text
        hook = client.post(
            "/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["memory.added"]},
            headers=tenant.headers,
        )
        assert hook.status_code == 201, hook.text
        a = _write_user(service, client, tenant, user_a, canary, seed=1)
        b = _write_user(service, client, tenant, user_b, other, seed=2)
        entities = service.graph.list_entities(t, user_id=user_a).data
        assert any(e.name == canary for e in entities)  # the canary reached the graph
        service.deps.sync_indexes()
        service.deps.indexes.save()
        b_before = _searchable(service, t, user_b, f"where does Caroline live {other}")
        assert any(other in x for x in b_before)
        b_kv = client.get(f"/v1/kv/{b['kv'].id}/content", headers=tenant.headers).content
        b_history = [h.op for h in service.memories.history(t, _changed_id(service, t, user_b))]

        # every place holds the canary before: the checks below can see it
        assert _redis_hits(redis_url, needle)
        if db_url.startswith("sqlite"):
            assert _sqlite_hits(db_url, needle)
        else:
            rows, files = _pg_hits(db_url, needle)
            assert {"memories", "memory_history", "events", "sessions", "entities"} <= set(rows)
            assert files

        refused = client.delete(f"/v1/users/{quote(user_a, safe='')}", headers=tenant.headers)
        assert refused.status_code == 422 and "purge=true" in refused.text
        reply = client.delete(
            f"/v1/users/{quote(user_a, safe='')}?purge=true", headers=tenant.headers
        )
        assert reply.status_code == 200, reply.text
        result = reply.json()
        if db_url.startswith("sqlite"):
            assert result["reclaimed"] == "sqlite: wal checkpoint truncated"
        else:
            assert result["reclaimed"] == "postgresql: VACUUM (FULL, ANALYZE) on 13 tables"
        counts = result["counts"]
        assert counts["memories"] >= 5 and counts["events"] == 4 and counts["sessions"] == 2
        assert counts["kv_caches"] == 1 and counts["entities"] >= 1 and counts["history"] >= 3
        assert counts["idempotent_replies"] >= 1 and result["scope_sha256"] == sha256_hex(user_a)
        assert counts["webhook_deliveries"] >= 1

        # nowhere afterwards
        assert _redis_hits(redis_url, needle) == []
        assert _files_with(service.settings.blob_dir, needle.encode()) == []
        assert _files_with(service.settings.index_dir, needle.encode()) == []
        if db_url.startswith("sqlite"):
            assert _sqlite_hits(db_url, needle) == []
        else:
            assert _pg_hits(db_url, needle) == ([], [])
        # and nothing through the API
        assert service.memories.list(t, MemoryFilter(user_id=user_a), limit=100).data == []
        assert _searchable(service, t, user_a, canary) == []
        assert service.graph.list_entities(t, user_id=user_a).data == []
        assert client.get(f"/v1/kv/{a['kv'].id}", headers=tenant.headers).status_code == 404

        # user B is untouched: same search, same history, same KV bytes, the graph
        assert _searchable(service, t, user_b, f"where does Caroline live {other}") == b_before
        assert [
            h.op for h in service.memories.history(t, _changed_id(service, t, user_b))
        ] == b_history
        content = client.get(f"/v1/kv/{b['kv'].id}/content", headers=tenant.headers)
        assert content.status_code == 200 and content.content == b_kv
        assert any(e.name == other for e in service.graph.list_entities(t, user_id=user_b).data)
        assert service.deps.short_term.pieces(t, f"s2-{other}")

    with service.deps.sessions() as session:
        (audit,) = session.scalars(select(PurgeAuditRow).where(PurgeAuditRow.tenant_id == t))
    assert audit.scope_kind == "user" and audit.counts == counts
    assert len(audit.ids["memories"]) == counts["memories"]


def _changed_id(svc: MemoryService, tenant_id: str, user: str) -> str:
    page = svc.memories.list(tenant_id, MemoryFilter(user_id=user), limit=100).data
    return next(m.id for m in page if m.text == "I drink green tea.")


def test_session_and_agent_purges_keep_what_others_share(
    service: MemoryService, tenant: TenantKey
) -> None:
    t = tenant.tenant_id
    other_tenant = new_tenant(service, "o")
    shared = _container("shared-session", 3)
    mine = _store_kv(service, t, "shared-session", shared)
    theirs = _store_kv(service, other_tenant.tenant_id, "shared-session", shared)
    assert mine.id != theirs.id
    service.events.add(
        t,
        EventBatch(user_id="u", session_id="shared-session",
                   events=[EventCreate(speaker="Caroline", content="I live in Oslo.",
                                       event_time=T0)]),
    )  # fmt: skip
    service.sessions.close(t, "shared-session")
    service.events.add(
        t,
        EventBatch(user_id="u", session_id="kept", agent_id="bot",
                   events=[EventCreate(speaker="Caroline", content="Oslo is lovely in May.",
                                       event_time=T0 + timedelta(days=1))]),
    )  # fmt: skip
    service.sessions.close(t, "kept")

    with TestClient(create_app(service.settings, service=service)) as client:
        reply = client.delete("/v1/sessions/shared-session?purge=true", headers=tenant.headers)
        assert reply.status_code == 200, reply.text
        counts = reply.json()["counts"]
        assert counts["kv_caches"] == 1 and counts["kv_blobs_kept_shared"] == 1
        # the other tenant's copy of the blob stays readable
        other = client.get(f"/v1/kv/{theirs.id}/content", headers=other_tenant.headers)
        assert other.status_code == 200 and other.content == shared
        # the entity "Oslo" is still mentioned by the kept session's memories: it stays
        names = {e.name for e in service.graph.list_entities(t, user_id="u").data}
        assert "Oslo" in names
        left = service.memories.list(t, MemoryFilter(user_id="u"), limit=100).data
        assert left and all(m.session_id in (None, "kept") for m in left)

        agent = client.delete("/v1/agents/bot?purge=true", headers=tenant.headers)
        assert agent.status_code == 200 and agent.json()["counts"]["events"] == 1
        assert service.memories.list(t, MemoryFilter(user_id="u"), limit=100).data == []
        assert service.graph.list_entities(t, user_id="u").data == []
        again = client.delete("/v1/agents/bot?purge=true", headers=tenant.headers)
        assert again.status_code == 200 and again.json()["counts"]["memories"] == 0
