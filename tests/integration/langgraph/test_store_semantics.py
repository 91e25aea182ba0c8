"""``MemsvcStore`` keeps LangGraph's store semantics: the same answers as langgraph's own
``InMemoryStore`` for get / put / delete / search / list_namespaces, over the embedded
``Memory`` and over REST."""

from __future__ import annotations

import asyncio

import pytest
from langgraph.store.base import BaseStore, InvalidNamespaceError
from langgraph.store.memory import InMemoryStore

from memsvc.integrations.langgraph import MemsvcStore
from memsvc.sdk import AsyncMemoryClient, Memory, MemoryClient
from tests.e2e.conftest import ServerProcess, create_tenant

ITEMS = [
    (("users", "ada", "prefs"), "tea", {"drink": "oolong", "strength": 3, "tags": ["hot"]}),
    (("users", "ada", "prefs"), "city", {"text": "Ada lives in Lisbon", "strength": 5}),
    (("users", "ada", "notes"), "n1", {"text": "Ada learns Portuguese", "nested": {"a": 1}}),
    (("users", "bob", "prefs"), "tea", {"drink": "green tea", "strength": 1}),
    (("docs",), "readme", {"text": "memsvc is a memory service", "strength": 2}),
    # The same value under two keys: two items, not one.
    (("users", "bob", "prefs"), "tea-copy", {"drink": "green tea", "strength": 1}),
]


def _fill(store: BaseStore) -> None:
    for namespace, key, value in ITEMS:
        # Every value has "strength": InMemoryStore raises on a comparison with a missing field.
        store.put(namespace, key, {"strength": 0, **value})


def _keys(items) -> list[tuple[tuple[str, ...], str]]:
    return sorted((item.namespace, item.key) for item in items)


def test_same_answers_as_langgraphs_in_memory_store(sync_client: Memory | MemoryClient) -> None:
    ours, reference = MemsvcStore(sync_client, user_level=1), InMemoryStore()
    for store in (ours, reference):
        _fill(store)

    for namespace, key, value in ITEMS:
        got = ours.get(namespace, key)
        assert got is not None and got.value == {"strength": 0, **value}  # exactly as put
        assert got.namespace == namespace and got.key == key
        assert got.dict()["value"] == reference.get(namespace, key).dict()["value"]
    assert ours.get(("users", "ada", "prefs"), "missing") is None
    assert ours.get(("users", "eve", "prefs"), "tea") is None

    for prefix in [(), ("users",), ("users", "ada"), ("users", "bob", "prefs"), ("nope",)]:
        assert _keys(ours.search(prefix, limit=50)) == _keys(reference.search(prefix, limit=50))
    for query_filter in [
        {"strength": {"$gte": 3}},
        {"drink": "green tea"},
        {"strength": {"$ne": 1}, "text": "Ada lives in Lisbon"},
        {"nested": {"a": 1}},
        {"tags": ["hot"]},
    ]:
        mine = ours.search(("users",), filter=query_filter, limit=50)
        theirs = reference.search(("users",), filter=query_filter, limit=50)
        assert _keys(mine) == _keys(theirs), query_filter
    assert len(ours.search((), limit=2)) == 2
    assert len(ours.search((), limit=50, offset=4)) == len(ITEMS) - 4

    for kwargs in [
        {},
        {"prefix": ("users",)},
        {"prefix": ("users", "*", "prefs")},
        {"suffix": ("prefs",)},
        {"prefix": ("users",), "max_depth": 2},
        {"max_depth": 1},
        {"limit": 2, "offset": 1},
    ]:
        assert ours.list_namespaces(**kwargs) == reference.list_namespaces(**kwargs), kwargs

    # put replaces, put(None) and delete remove; the others stay.
    ours.put(("users", "ada", "prefs"), "tea", {"drink": "sencha"})
    updated = ours.get(("users", "ada", "prefs"), "tea")
    assert updated.value == {"drink": "sencha"} and updated.updated_at >= updated.created_at
    ours.delete(("users", "ada", "prefs"), "tea")
    ours.put(("users", "bob", "prefs"), "tea", None)
    assert ours.get(("users", "ada", "prefs"), "tea") is None
    assert ours.get(("users", "bob", "prefs"), "tea") is None
    assert ours.get(("users", "bob", "prefs"), "tea-copy").value["drink"] == "green tea"
    assert len(ours.search((), limit=50)) == len(ITEMS) - 2

    with pytest.raises(InvalidNamespaceError):
        ours.put(("bad.label",), "k", {"x": 1})


def test_search_with_a_query_is_memsvcs_recall(sync_client: Memory | MemoryClient) -> None:
    store = MemsvcStore(sync_client, index_fields=["text", "drink"])
    _fill(store)
    found = store.search(("users", "ada"), query="where does Ada live", limit=3)
    assert found[0].key == "city" and found[0].score is not None and found[0].score > 0
    assert all(item.namespace[:2] == ("users", "ada") for item in found)
    # Filters on values apply to recall's candidates.
    found = store.search(("users",), query="green tea", filter={"strength": 1}, limit=5)
    assert {item.key for item in found} == {"tea", "tea-copy"}
    assert all(item.namespace == ("users", "bob", "prefs") for item in found)


def test_items_are_memories_the_other_doors_see(sync_client: Memory | MemoryClient) -> None:
    store = MemsvcStore(sync_client, agent_id="planner", user_level=1)
    store.put(("memories", "ada"), "m1", {"text": "Ada prefers mornings"}, index=["text"])
    [memory] = sync_client.get_all(user_id="ada", agent_id="planner").data
    assert memory.text == "Ada prefers mornings"
    assert memory.metadata["lg_ns"] == "memories.ada" and memory.metadata["lg_key"] == "m1"
    # Memories written without the store are not items.
    sync_client.add("not an item", user_id="ada", agent_id="planner")
    assert _keys(store.search(("memories",), limit=10)) == [(("memories", "ada"), "m1")]


def test_async_over_every_client(server: ServerProcess, memory: Memory) -> None:
    tenant = create_tenant(server.url, "lg-async")

    async def exercise(store: MemsvcStore) -> None:
        await store.aput(("a", "b"), "k", {"text": "async works", "n": 1})
        assert (await store.aget(("a", "b"), "k")).value == {"text": "async works", "n": 1}
        assert _keys(await store.asearch(("a",), query="async")) == [(("a", "b"), "k")]
        assert await store.alist_namespaces(prefix=("a",)) == [("a", "b")]
        await store.adelete(("a", "b"), "k")
        assert await store.aget(("a", "b"), "k") is None

    async def run() -> None:
        async with AsyncMemoryClient(server.url, tenant.key) as client:
            await exercise(MemsvcStore(client))
        await exercise(MemsvcStore(memory))  # a sync client: on a worker thread

    asyncio.run(run())
    client = AsyncMemoryClient(server.url, tenant.key)
    with pytest.raises(TypeError, match="async only"):
        MemsvcStore(client).get(("a",), "k")
    asyncio.run(client.aclose())
