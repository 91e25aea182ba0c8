"""Export and import: a tenant's archive imported into a fresh instance on the other backend
(SQLite -> PostgreSQL, PostgreSQL -> SQLite) answers the same queries with the same results,
the same history and the same KV bytes; a second import skips everything; a changed row is a
reported conflict, never merged; a damaged archive is refused before anything is written."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consolidation.dispatch import build_service
from memsvc.errors import InvalidRequestError
from memsvc.schemas import (
    EventBatch,
    EventCreate,
    EventFilter,
    MemoryCreate,
    MemoryFilter,
    SearchRequest,
)
from memsvc.service import MemoryService
from tests.conftest import fresh_pg_database, make_settings, new_tenant
from tests.integration.kv.crafted import container

T0 = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
CHAT = [
    ("Caroline", "I live in Oslo with my dog Bolt."),
    ("Melanie", "I love painting sunsets at the lake."),
    ("Caroline", "I went to an LGBTQ support group yesterday and it was so powerful."),
    ("Melanie", "My kids love the beach. We go to Cape Cod every summer."),
]
QUERIES = ["where does Caroline live", "painting", "beach with the kids", "support group"]


@contextmanager
def _service(kind: str, data_dir: Path) -> Iterator[MemoryService]:
    with ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{data_dir / 'memsvc.db'}"
        else:
            url = stack.enter_context(fresh_pg_database("memsvc_transfer"))
        svc = build_service(make_settings(data_dir, url))
        stack.callback(svc.close)
        yield svc


def _fill(svc: MemoryService, tenant_id: str) -> str:
    """Memories (one updated: history), chat consolidated (facts, episode, graph), a KV cache
    and a working-memory session; returns the KV id."""
    added = svc.memories.add(
        tenant_id,
        [MemoryCreate(text="I prefer tea over coffee.", user_id="u", metadata={"src": "x"})],
        actor="test",
    )
    svc.memories.update(tenant_id, added[0].id, {"text": "I prefer green tea."}, actor="test")
    svc.memories.add(
        tenant_id, [MemoryCreate(text="Agent note about painting.", agent_id="a")], actor="test"
    )
    batch = EventBatch(
        user_id="u",
        session_id="s1",
        events=[
            EventCreate(speaker=who, content=said, event_time=T0 + timedelta(minutes=n))
            for n, (who, said) in enumerate(CHAT)
        ],
    )
    svc.events.add(tenant_id, batch)
    svc.sessions.close(tenant_id, "s1")
    open_batch = EventBatch(
        user_id="u",
        session_id="s2",
        events=[EventCreate(speaker="Caroline", content="I will paint the beach.", event_time=T0)],
    )
    svc.events.add(tenant_id, open_batch)
    path = svc.deps.blobs.new_tmp_file()
    path.write_bytes(
        container(T=8, seed=5, token_ids=list(range(8)),
                  origin={"kind": "session", "session_id": "s1"})
    )  # fmt: skip
    return svc.kv.store_file(tenant_id, path, kind="episodic", session_id="s1").id


def _view(svc: MemoryService, tenant_id: str, kv_id: str) -> dict:
    """What a client sees: memories, history, search results, graph, events, KV bytes."""
    memories = svc.memories.list(
        tenant_id, MemoryFilter(include_archived=True), limit=1000, order="asc"
    ).data
    return {
        "memories": [m.model_dump(exclude={"score"}) for m in memories],
        "history": {
            m.id: [h.model_dump() for h in svc.memories.history(tenant_id, m.id)] for m in memories
        },
        "search": {
            q: [
                (r.memory.id, round(r.score, 5))
                for r in svc.recall.search(
                    tenant_id, SearchRequest(query=q, filters=MemoryFilter(user_id="u"))
                ).data
            ]
            for q in QUERIES
        },
        "entities": sorted(
            (e.id, e.name, e.type) for e in svc.graph.list_entities(tenant_id, user_id="u").data
        ),
        "relations": sorted(
            (r.id, r.type, r.source.name, r.target.name, str(r.valid_to))
            for r in svc.graph.list_relations(tenant_id, user_id="u").data
        ),
        "events": [
            e.model_dump() for e in svc.events.list(tenant_id, EventFilter(), limit=1000).data
        ],
        "session": svc.sessions.get(tenant_id, "s1").model_dump(),
        "kv": b"".join(svc.kv.open_content(tenant_id, kv_id).chunks()),
    }


@pytest.mark.parametrize(("source", "target"), [("sqlite", "postgres"), ("postgres", "sqlite")])
def test_round_trip_to_the_other_backend(source: str, target: str, tmp_path: Path) -> None:
    archive = tmp_path / "tenant.zip"
    with _service(source, tmp_path / "a") as svc:
        tenant = new_tenant(svc, "src")
        kv_id = _fill(svc, tenant.tenant_id)
        before = _view(svc, tenant.tenant_id, kv_id)
        manifest = svc.scopes.export(tenant.tenant_id, archive)
    assert manifest["counts"]["memories"] == len(before["memories"]) >= 8
    assert manifest["counts"]["relations"] >= 1 and manifest["counts"]["kv_caches"] == 1
    assert f"kv/{_kv_digest(archive)}" in manifest["members"]

    with _service(target, tmp_path / "b") as svc:
        svc.tenants.create("copy", tenant.tenant_id)
        report = svc.scopes.import_(tenant.tenant_id, archive)
        assert report.conflicts == []
        assert report.inserted["memories"] == manifest["counts"]["memories"]
        after = _view(svc, tenant.tenant_id, kv_id)
        for key in before:
            assert after[key] == before[key], key
        # the open session's turns are back in working memory (refilled from the events)
        assert svc.sessions.get(tenant.tenant_id, "s2").working_pieces >= 1

        again = svc.scopes.import_(tenant.tenant_id, archive)  # same content: all skipped
        assert again.conflicts == [] and sum(again.inserted.values()) == 0

        changed = before["memories"][0]["id"]
        svc.memories.update(tenant.tenant_id, changed, {"text": "Changed here."}, actor="t")
        third = svc.scopes.import_(tenant.tenant_id, archive)
        assert {"table": "memories", "id": changed} in third.conflicts
        assert svc.memories.get(tenant.tenant_id, changed).text == "Changed here."  # not merged


def _kv_digest(archive: Path) -> str:
    with zipfile.ZipFile(archive) as zf:
        (name,) = [n for n in zf.namelist() if n.startswith("kv/")]
    return name.removeprefix("kv/")


def test_a_damaged_archive_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    archive = tmp_path / "tenant.zip"
    with _service("sqlite", tmp_path / "a") as svc:
        tenant = new_tenant(svc, "src")
        svc.memories.add(
            tenant.tenant_id, [MemoryCreate(text="hello there", user_id="u")], actor="t"
        )
        svc.scopes.export(tenant.tenant_id, archive)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "memories.jsonl":
                data = data.replace(b"hello there", b"hello THERE")
            dst.writestr(item, data)
    with _service("sqlite", tmp_path / "b") as svc:
        svc.tenants.create("copy", tenant.tenant_id)
        with pytest.raises(InvalidRequestError, match=r"memories\.jsonl fails its checksum"):
            svc.scopes.import_(tenant.tenant_id, damaged)
        assert svc.memories.list(tenant.tenant_id, MemoryFilter(), limit=10).data == []
    shutil.rmtree(tmp_path / "b")


def test_an_entity_under_another_id_is_a_conflict_not_a_merge(tmp_path: Path) -> None:
    archive = tmp_path / "tenant.zip"
    with _service("sqlite", tmp_path / "a") as svc:
        tenant = new_tenant(svc, "src")
        _fill(svc, tenant.tenant_id)
        svc.scopes.export(tenant.tenant_id, archive)
    with _service("sqlite", tmp_path / "b") as svc:
        svc.tenants.create("copy", tenant.tenant_id)
        _fill(svc, tenant.tenant_id)  # the same people and places, under their own ids
        before = svc.graph.list_entities(tenant.tenant_id, user_id="u").data
        report = svc.scopes.import_(tenant.tenant_id, archive)
        clashes = [c for c in report.conflicts if c["table"] == "entities"]
        assert clashes and all(c["why"].startswith("entity key taken by") for c in clashes)
        after = svc.graph.list_entities(tenant.tenant_id, user_id="u").data
        assert sorted(e.id for e in after) == sorted(e.id for e in before)  # not merged
