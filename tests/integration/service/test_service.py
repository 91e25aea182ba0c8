"""MemoryService against SQLite and the real PostgreSQL: writes, history, search, restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consolidation.dispatch import build_service
from memsvc.errors import InvalidRequestError, NotFoundError
from memsvc.schemas import MemoryCreate, MemoryFilter, SearchRequest
from memsvc.service import MemoryService
from memsvc.settings import Settings
from tests.conftest import TenantKey


def _add(service: MemoryService, tenant: TenantKey, *texts: str, **fields) -> list[str]:
    items = [MemoryCreate(text=t, **fields) for t in texts]
    return [m.id for m in service.memories.add(tenant.tenant_id, items, actor="test")]


def _search(service: MemoryService, tenant: TenantKey, query: str, **kw) -> list[str]:
    filters = MemoryFilter(**kw.pop("filters", {}))
    response = service.recall.search(
        tenant.tenant_id, SearchRequest(query=query, filters=filters, **kw)
    )
    return [r.memory.text for r in response.data]


def test_add_batch_dedupes_and_writes_history(service: MemoryService, tenant: TenantKey) -> None:
    written = service.memories.add(
        tenant.tenant_id,
        [
            MemoryCreate(text="Alice adopted a cat named Miso", user_id="alice"),
            MemoryCreate(text="alice adopted a cat  named Miso", user_id="alice"),
            MemoryCreate(text="Alice adopted a cat named Miso", user_id="bob"),
        ],
        actor="tester",
    )
    assert [w.event for w in written] == ["ADD", "NOOP", "ADD"]
    assert written[0].id == written[1].id != written[2].id
    history = service.memories.history(tenant.tenant_id, written[0].id)
    assert [(h.op, h.actor) for h in history] == [("ADD", "tester")]
    assert history[0].new_value["text"] == "Alice adopted a cat named Miso"


def test_batch_insert_returns_each_item_its_own_row(
    service: MemoryService, tenant: TenantKey
) -> None:
    # One INSERT .. RETURNING writes the batch: every returned row must be its item's.
    texts = [f"note {n}: the {n}th thing worth keeping" for n in range(300)]
    written = service.memories.add(
        tenant.tenant_id, [MemoryCreate(text=t, user_id="u") for t in texts], actor="test"
    )
    assert [w.text for w in written] == texts
    assert [service.memories.get(tenant.tenant_id, w.id).text for w in written] == texts
    assert [
        h.new_value["text"]
        for w in written[:3]
        for h in service.memories.history(tenant.tenant_id, w.id)
    ] == texts[:3]


def test_invalid_batch_writes_nothing(service: MemoryService, tenant: TenantKey) -> None:
    with pytest.raises(InvalidRequestError) as info:
        service.memories.add(
            tenant.tenant_id,
            [MemoryCreate(text="fine", user_id="u"), MemoryCreate(text="   ", user_id="u")],
            actor="t",
        )
    assert info.value.field == "items[1].text"
    assert service.memories.list(tenant.tenant_id, MemoryFilter(user_id="u")).count == 0


def test_text_limit_is_configurable(tmp_path, db_url: str) -> None:
    from tests.conftest import make_settings, new_tenant

    svc = build_service(make_settings(tmp_path, db_url, max_text_chars=10))
    try:
        t = new_tenant(svc)
        with pytest.raises(InvalidRequestError, match="limit is 10"):
            svc.memories.add(t.tenant_id, [MemoryCreate(text="x" * 11)], actor="t")
        assert (
            svc.memories.add(t.tenant_id, [MemoryCreate(text="x" * 10)], actor="t")[0].event
            == "ADD"
        )
    finally:
        svc.close()


def test_update_reembeds_and_records_old_and_new(service: MemoryService, tenant: TenantKey) -> None:
    (memory_id,) = _add(service, tenant, "I live in Lisbon", user_id="u")
    updated = service.memories.update(
        tenant.tenant_id,
        memory_id,
        {"text": "I live in Porto", "metadata": {"src": "chat"}},
        actor="editor",
    )
    assert updated.text == "I live in Porto" and updated.metadata == {"src": "chat"}
    assert _search(service, tenant, "Porto", filters={"user_id": "u"})[0] == "I live in Porto"
    assert "I live in Lisbon" not in _search(service, tenant, "Lisbon", filters={"user_id": "u"})
    ops = service.memories.history(tenant.tenant_id, memory_id)
    assert [h.op for h in ops] == ["ADD", "UPDATE"]
    assert ops[1].old_value["text"] == "I live in Lisbon"
    assert ops[1].new_value["text"] == "I live in Porto"
    assert ops[1].actor == "editor"


def test_update_validation(service: MemoryService, tenant: TenantKey) -> None:
    (memory_id,) = _add(service, tenant, "a fact", user_id="u")
    with pytest.raises(InvalidRequestError) as info:
        service.memories.update(tenant.tenant_id, memory_id, {"text": ""}, actor="t")
    assert info.value.field == "text"
    with pytest.raises(NotFoundError):
        service.memories.update(tenant.tenant_id, "no-such-id", {"text": "x"}, actor="t")
    past = datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidRequestError) as info:
        service.memories.update(
            tenant.tenant_id,
            memory_id,
            {"valid_from": past, "valid_to": past - timedelta(days=1)},
            actor="t",
        )
    assert info.value.field == "valid_to"
    assert [h.op for h in service.memories.history(tenant.tenant_id, memory_id)] == ["ADD"]


def test_delete_hides_everywhere_but_history(service: MemoryService, tenant: TenantKey) -> None:
    keep, gone = _add(service, tenant, "blue is my colour", "red is my colour", user_id="u")
    service.memories.delete(tenant.tenant_id, gone, actor="t")
    with pytest.raises(NotFoundError):
        service.memories.get(tenant.tenant_id, gone)
    assert _search(service, tenant, "red colour") == ["blue is my colour"]
    assert [m.id for m in service.memories.list(tenant.tenant_id, MemoryFilter()).data] == [keep]
    assert [h.op for h in service.memories.history(tenant.tenant_id, gone)] == ["ADD", "DELETE"]
    with pytest.raises(NotFoundError):
        service.memories.delete(tenant.tenant_id, gone, actor="t")


def test_delete_all_by_scope(service: MemoryService, tenant: TenantKey) -> None:
    _add(service, tenant, "one", "two", user_id="u1")
    _add(service, tenant, "three", user_id="u2")
    with pytest.raises(InvalidRequestError):
        service.memories.delete_all(tenant.tenant_id, MemoryFilter(), actor="t")
    assert service.memories.delete_all(tenant.tenant_id, MemoryFilter(user_id="u1"), actor="t") == 2
    assert [m.text for m in service.memories.list(tenant.tenant_id, MemoryFilter()).data] == [
        "three"
    ]
    assert _search(service, tenant, "one two") == ["three"]  # dense always answers something


def test_search_filters(service: MemoryService, tenant: TenantKey) -> None:
    day = datetime(2024, 5, 1, tzinfo=UTC)
    service.memories.add(
        tenant.tenant_id,
        [
            MemoryCreate(
                text="trip to Japan in spring",
                user_id="u",
                kind="event",
                occurred_at=day,
                metadata={"topic": "travel", "year": 2024},
            ),
            MemoryCreate(
                text="trip to Peru planned",
                user_id="u",
                kind="plan",
                occurred_at=day + timedelta(days=30),
                metadata={"topic": "travel"},
            ),
            MemoryCreate(
                text="trip report draft", user_id="u", agent_id="writer", metadata={"topic": "work"}
            ),
            MemoryCreate(text="trip to Japan memories", user_id="v"),
        ],
        actor="t",
    )
    q = "trip"
    assert len(_search(service, tenant, q, filters={"user_id": "u"})) == 3
    assert _search(service, tenant, q, filters={"kind": "plan"}) == ["trip to Peru planned"]
    assert _search(service, tenant, q, filters={"agent_id": "writer"}) == ["trip report draft"]
    assert set(_search(service, tenant, q, filters={"metadata": {"topic": "travel"}})) == {
        "trip to Japan in spring",
        "trip to Peru planned",
    }
    assert _search(service, tenant, q, filters={"metadata": {"year": 2024}}) == [
        "trip to Japan in spring"
    ]
    window = {
        "occurred_after": day + timedelta(days=1),
        "occurred_before": day + timedelta(days=60),
    }
    assert _search(service, tenant, q, filters={"user_id": "u", **window}) == [
        "trip to Peru planned"
    ]
    assert len(_search(service, tenant, q)) == 4
    assert len(_search(service, tenant, q, top_k=2)) == 2


def test_search_results_carry_provenance_and_threshold(
    service: MemoryService, tenant: TenantKey
) -> None:
    service.memories.add(
        tenant.tenant_id,
        [
            MemoryCreate(
                text="Caroline went to a support group",
                user_id="u",
                source_event_ids=["D1:3", "D1:4"],
            )
        ],
        actor="t",
    )
    _add(service, tenant, "completely unrelated sentence about weather", user_id="u")
    response = service.recall.search(
        tenant.tenant_id, SearchRequest(query="Caroline support group", top_k=5)
    )
    top = response.data[0]
    assert top.memory.source_event_ids == ["D1:3", "D1:4"]
    assert top.dense_score is not None and top.lexical_score is not None
    strict = service.recall.search(
        tenant.tenant_id, SearchRequest(query="Caroline support group", threshold=0.99)
    )
    assert [r.memory.text for r in strict.data] == ["Caroline went to a support group"]


def test_search_limits(service: MemoryService, tenant: TenantKey) -> None:
    with pytest.raises(InvalidRequestError) as info:
        service.recall.search(tenant.tenant_id, SearchRequest(query="x", top_k=10_000))
    assert info.value.field == "top_k"
    with pytest.raises(InvalidRequestError) as info:
        service.recall.search(tenant.tenant_id, SearchRequest(query=" "))
    assert info.value.field == "query"


def test_list_paginates_with_cursor(service: MemoryService, tenant: TenantKey) -> None:
    ids = _add(service, tenant, *[f"memory number {n}" for n in range(7)], user_id="p")
    seen: list[str] = []
    cursor = None
    while True:
        page = service.memories.list(
            tenant.tenant_id, MemoryFilter(user_id="p"), limit=3, cursor=cursor
        )
        seen += [m.id for m in page.data]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    asc = service.memories.list(tenant.tenant_id, MemoryFilter(user_id="p"), limit=10, order="asc")
    assert [m.id for m in asc.data] == ids
    with pytest.raises(InvalidRequestError) as info:
        service.memories.list(tenant.tenant_id, MemoryFilter(), cursor="garbage!!")
    assert info.value.field == "cursor"


def test_restart_keeps_memories_and_index(settings: Settings, tenant: TenantKey) -> None:
    first = build_service(settings)
    try:
        _add(first, tenant, "the wifi password is hunter2", user_id="u")
        first.deps.indexes.save()
        _add(first, tenant, "written after the snapshot", user_id="u")
    finally:
        first.close()
    second = build_service(settings)
    try:
        assert _search(second, tenant, "wifi password")[0] == "the wifi password is hunter2"
        assert "written after the snapshot" in _search(second, tenant, "written after snapshot")
        assert second.rebuild_index() >= 2
        assert _search(second, tenant, "wifi password")[0] == "the wifi password is hunter2"
    finally:
        second.close()


def test_two_services_over_one_database_agree(settings: Settings, tenant: TenantKey) -> None:
    other_dir = settings.data_dir.parent / "other"
    a = build_service(settings)
    b = build_service(settings.model_copy(update={"data_dir": other_dir}))
    try:
        (memory_id,) = _add(a, tenant, "the launch code is 0000", user_id="u")
        assert _search(b, tenant, "launch code") == ["the launch code is 0000"]
        b.memories.update(
            tenant.tenant_id, memory_id, {"text": "the launch code is 1234"}, actor="b"
        )
        assert _search(a, tenant, "launch code") == ["the launch code is 1234"]
        a.memories.delete(tenant.tenant_id, memory_id, actor="a")
        assert _search(b, tenant, "launch code") == []
    finally:
        a.close()
        b.close()
