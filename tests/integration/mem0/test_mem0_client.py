"""mem0ai's own ``MemoryClient`` and ``AsyncMemoryClient``, unmodified, against memsvc's
``/mem0`` routes on a real server (SQLite and PostgreSQL): every supported call, mem0's
response shapes, the filters, the refusals and tenant isolation."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from mem0 import AsyncMemoryClient, MemoryClient
from mem0.exceptions import MemoryError as Mem0Error
from mem0.exceptions import MemoryNotFoundError
from mem0.exceptions import ValidationError as Mem0ValidationError

from tests.integration.mem0.conftest import Mem0Server

MEMORY_KEYS = {"id", "memory", "user_id", "agent_id", "run_id", "metadata", "created_at",
               "updated_at", "hash", "categories"}  # fmt: skip


def _client(server: Mem0Server, key: str | None = None) -> MemoryClient:
    return MemoryClient(api_key=key or server.tenant.key, host=server.host)


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _texts(reply: dict[str, Any]) -> set[str]:
    return {m["memory"] for m in reply["results"]}


def _add(client: MemoryClient, text: str, **kwargs: Any) -> dict[str, Any]:
    reply = client.add([{"role": "user", "content": text}], infer=False, **kwargs)
    (item,) = reply["results"]
    return item


def test_ping_on_construction_checks_the_key(mem0_server: Mem0Server) -> None:
    assert _client(mem0_server).api_key == mem0_server.tenant.key
    with pytest.raises(ValueError, match="API key"):
        MemoryClient(api_key="not-a-key", host=mem0_server.host)


def test_add_without_infer_stores_each_message(mem0_server: Mem0Server) -> None:
    client, user = _client(mem0_server), _user()
    messages = [
        {"role": "user", "content": "I am vegetarian and allergic to nuts."},
        {"role": "assistant", "content": "Noted: vegetarian, no nuts."},
    ]
    reply = client.add(
        messages, user_id=user, agent_id="chef", run_id="run-1", metadata={"src": "chat"},
        infer=False,
    )  # fmt: skip
    results = reply["results"]
    assert [r["event"] for r in results] == ["ADD", "ADD"]
    assert [r["memory"] for r in results] == [m["content"] for m in messages]
    stored = client.get(results[0]["id"])
    assert set(stored) >= MEMORY_KEYS
    assert (stored["user_id"], stored["agent_id"], stored["run_id"]) == (user, "chef", "run-1")
    assert stored["metadata"] == {"src": "chat"}
    # The same memory is one implementation underneath: /v1 sees run_id as session_id.
    native = httpx.get(
        f"{mem0_server.server.url}/v1/memories/{results[0]['id']}",
        headers=mem0_server.tenant.headers,
    ).json()
    assert native["session_id"] == "run-1" and native["text"] == messages[0]["content"]
    again = client.add(messages[:1], user_id=user, agent_id="chef", run_id="run-1",
                       metadata={"src": "chat"}, infer=False)  # fmt: skip
    assert [r["event"] for r in again["results"]] == ["NOOP"]


def test_add_with_infer(mem0_server: Mem0Server) -> None:
    client, user = _client(mem0_server), _user()
    messages = [
        {"role": "user", "content": "My sister Ana lives in Lisbon."},
        {"role": "assistant", "content": "Lisbon is lovely in spring."},
    ]
    reply = client.add(messages, user_id=user)  # infer defaults to True in mem0
    assert reply["results"]
    for item in reply["results"]:
        assert item["event"] in ("ADD", "UPDATE", "NOOP")
        assert client.get(item["id"])["user_id"] == user
    # Facts come from the user's turn (extracted on write), not from the assistant's reply.
    assert any("Lisbon" in text for text in _texts(reply))
    assert not any("spring" in text for text in _texts(reply))


def test_search_with_v3_filters(mem0_server: Mem0Server) -> None:
    client, user = _client(mem0_server), _user()
    rows = [
        ("Loves green tea", "a1", "r1", {"n": 1, "topic": "Drinks"}),
        ("Plays the violin", "a2", "r1", {"n": 5, "topic": "music"}),
        ("Visits Porto often", "a1", "r2", {"n": 9, "topic": "travel"}),
        ("Reads science fiction", None, "r2", {"n": 12}),
    ]
    for text, agent, run, metadata in rows:
        kwargs = {"agent_id": agent} if agent else {}
        _add(client, text, user_id=user, run_id=run, metadata=metadata, **kwargs)

    def found(filters: dict[str, Any]) -> set[str]:
        reply = client.search("tea violin Porto science", filters=filters, top_k=20)
        for hit in reply["results"]:
            assert isinstance(hit["score"], float) and set(hit) >= MEMORY_KEYS
        return _texts(reply)

    everyone = {r[0] for r in rows}
    assert found({"user_id": user}) == everyone
    assert found({"AND": [{"user_id": user}, {"agent_id": "a1"}]}) == {rows[0][0], rows[2][0]}
    assert found({"AND": [{"user_id": user}, {"run_id": {"in": ["r2"]}}]}) == {
        rows[2][0], rows[3][0]}  # fmt: skip
    assert found({"user_id": user, "agent_id": {"ne": "a1"}}) == {rows[1][0], rows[3][0]}
    assert found({"AND": [{"user_id": user}, {"agent_id": "*"}]}) == everyone - {rows[3][0]}
    assert found({"user_id": user, "metadata": {"n": {"gte": 5, "lte": 9}}}) == {
        rows[1][0], rows[2][0]}  # fmt: skip
    assert found({"user_id": user, "metadata.n": {"gt": 5}}) == {rows[2][0], rows[3][0]}
    assert found({"user_id": user, "metadata.n": {"lt": 5}}) == {rows[0][0]}
    assert found({"user_id": user, "metadata.topic": {"contains": "us"}}) == {rows[1][0]}
    assert found({"user_id": user, "metadata.topic": {"icontains": "DRINK"}}) == {rows[0][0]}
    assert found({"AND": [{"user_id": user}, {"OR": [{"run_id": "r1"}, {"metadata.n": 12}]}]}) == {
        rows[0][0],
        rows[1][0],
        rows[3][0],
    }
    assert found({"AND": [{"user_id": user}, {"NOT": [{"run_id": "r1"}]}]}) == {
        rows[2][0], rows[3][0]}  # fmt: skip
    assert found({"AND": [{"user_id": user}, {"created_at": {"gte": "2000-01-01"}}]}) == everyone
    assert found({"AND": [{"user_id": user}, {"created_at": {"lt": "2000-01-01"}}]}) == set()
    with pytest.raises(Mem0ValidationError, match="unknown operator 'like'"):
        client.search("tea", filters={"user_id": user, "metadata.n": {"like": 1}})
    with pytest.raises(Mem0ValidationError, match="categories"):
        client.search("tea", filters={"user_id": user, "categories": {"in": ["food"]}})


def test_get_all_pages(mem0_server: Mem0Server) -> None:
    client, user = _client(mem0_server), _user()
    texts = [f"memory number {i}" for i in range(5)]
    for text in texts:
        _add(client, text, user_id=user)
    first = client.get_all(filters={"user_id": user}, page=1, page_size=2)
    assert first["count"] == 5 and first["previous"] is None and first["next"]
    pages = [first] + [
        client.get_all(filters={"AND": [{"user_id": user}]}, page=p, page_size=2) for p in (2, 3)
    ]
    assert [len(p["results"]) for p in pages] == [2, 2, 1]
    assert pages[2]["next"] is None and pages[2]["previous"]
    assert {m["memory"] for p in pages for m in p["results"]} == set(texts)
    assert client.get_all(filters={"user_id": _user()})["results"] == []


def test_update_history_delete(mem0_server: Mem0Server) -> None:
    client, user = _client(mem0_server), _user()
    memory_id = _add(client, "Works at Acme", user_id=user)["id"]
    updated = client.update(memory_id, text="Works at Initech", metadata={"since": 2024})
    assert updated["memory"] == "Works at Initech" and updated["metadata"] == {"since": 2024}
    assert client.get(memory_id)["memory"] == "Works at Initech"
    history = client.history(memory_id)
    assert [h["event"] for h in history] == ["ADD", "UPDATE"]
    assert history[1]["old_memory"] == "Works at Acme"
    assert history[1]["new_memory"] == "Works at Initech"
    assert "deleted" in client.delete(memory_id)["message"]
    with pytest.raises(MemoryNotFoundError):
        client.get(memory_id)
    assert [h["event"] for h in client.history(memory_id)] == ["ADD", "UPDATE", "DELETE"]


def test_delete_all_by_scope(mem0_server: Mem0Server) -> None:
    client, user, keep = _client(mem0_server), _user(), _user()
    for text in ("one", "two"):
        _add(client, f"{text} thing", user_id=user)
    kept = _add(client, "kept thing", user_id=keep)["id"]
    assert "deleted" in client.delete_all(user_id=user)["message"]
    assert client.get_all(filters={"user_id": user})["results"] == []
    assert client.get(kept)["memory"] == "kept thing"
    with pytest.raises(Mem0ValidationError):  # no scope: refused, nothing deleted
        client.delete_all()
    assert client.get(kept)["memory"] == "kept thing"


def test_batch_update_and_delete(mem0_server: Mem0Server) -> None:
    client, user = _client(mem0_server), _user()
    ids = [_add(client, f"batch item {i}", user_id=user)["id"] for i in range(3)]
    reply = client.batch_update(
        [{"memory_id": ids[0], "text": "batch item zero"}, {"memory_id": ids[1], "text": "b1"}]
    )
    assert "2" in reply["message"]
    assert client.get(ids[0])["memory"] == "batch item zero"
    with pytest.raises(MemoryNotFoundError):  # one unknown id: nothing changes
        client.batch_update(
            [{"memory_id": ids[2], "text": "x"}, {"memory_id": "nope", "text": "y"}]
        )
    assert client.get(ids[2])["memory"] == "batch item 2"
    with pytest.raises(MemoryNotFoundError):
        client.batch_delete([{"memory_id": ids[2]}, {"memory_id": "nope"}])
    assert client.get(ids[2])["memory"] == "batch item 2"
    assert "3" in client.batch_delete([{"memory_id": i} for i in ids])["message"]
    assert client.get_all(filters={"user_id": user})["results"] == []


def test_exports(mem0_server: Mem0Server) -> None:
    client, user = _client(mem0_server), _user()
    for text in ("export me", "and me"):
        _add(client, text, user_id=user, metadata={"x": 1})
    created = client.create_memory_export(schema='{"type": "object"}', filters={"user_id": user})
    export = client.get_memory_export(memory_export_id=created["id"])
    assert export["status"] == "completed" and export["count"] == 2
    assert {m["memory"] for m in export["memories"]} == {"export me", "and me"}
    by_filters = client.get_memory_export(filters={"user_id": user})
    assert by_filters["count"] == 2
    with pytest.raises(Mem0ValidationError):
        client.get_memory_export(memory_export_id="exp_not-base64!")


def test_unsupported_calls_are_refused_by_name(mem0_server: Mem0Server) -> None:
    client = _client(mem0_server)
    with pytest.raises(Mem0Error, match="not supported"):
        client.users()
    with pytest.raises(Mem0Error, match="not supported"):
        client.get_summary()
    reply = httpx.get(
        f"{mem0_server.host}/v1/entities/",
        headers={"Authorization": f"Token {mem0_server.tenant.key}"},
    )
    assert reply.status_code == 501 and "/v1/entities/" in reply.json()["detail"]
    with pytest.raises(Mem0ValidationError, match="custom_categories"):
        client.add("hi", user_id=_user(), custom_categories=[{"x": "y"}])


def test_tenants_are_isolated(mem0_server: Mem0Server) -> None:
    mine, theirs, user = _client(mem0_server), _client(mem0_server, mem0_server.other.key), _user()
    memory_id = _add(mine, "a secret of tenant a", user_id=user)["id"]
    with pytest.raises(MemoryNotFoundError):
        theirs.get(memory_id)
    with pytest.raises(MemoryNotFoundError):
        theirs.update(memory_id, text="overwritten")
    with pytest.raises(MemoryNotFoundError):
        theirs.delete(memory_id)
    with pytest.raises(MemoryNotFoundError):
        theirs.batch_delete([{"memory_id": memory_id}])
    assert theirs.search("secret", filters={"user_id": user})["results"] == []
    assert theirs.get_all(filters={"user_id": user})["results"] == []
    theirs.delete_all(user_id=user)
    export = theirs.get_memory_export(filters={"user_id": user})
    assert export["count"] == 0
    assert mine.get(memory_id)["memory"] == "a secret of tenant a"


def test_async_client(mem0_server: Mem0Server) -> None:
    async def scenario() -> None:
        client = AsyncMemoryClient(api_key=mem0_server.tenant.key, host=mem0_server.host)
        user = _user()
        added = await client.add(
            [{"role": "user", "content": "Prefers window seats"}], user_id=user, infer=False
        )
        memory_id = added["results"][0]["id"]
        hits = await client.search("window seat", filters={"AND": [{"user_id": user}]})
        assert [h["id"] for h in hits["results"]] == [memory_id]
        listed = await client.get_all(filters={"user_id": user}, page=1, page_size=10)
        assert listed["count"] == 1
        await client.update(memory_id, text="Prefers aisle seats")
        assert (await client.get(memory_id))["memory"] == "Prefers aisle seats"
        assert len(await client.history(memory_id)) == 2
        await client.delete(memory_id)
        with pytest.raises(MemoryNotFoundError):
            await client.get(memory_id)
        await client.async_client.aclose()

    asyncio.run(scenario())
