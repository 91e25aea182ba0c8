"""A small LangGraph ``StateGraph`` compiled with ``store=MemsvcStore(...)``: one node writes
what the user said through ``get_store()``, the next recalls it through the runtime's store,
over the embedded ``Memory`` and over REST (sync ``invoke`` and async ``ainvoke``)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TypedDict

from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from memsvc.integrations.langgraph import MemsvcStore
from memsvc.sdk import AsyncMemoryClient, Memory, MemoryClient
from tests.e2e.conftest import ServerProcess, create_tenant


class State(TypedDict, total=False):
    user: str
    said: str
    question: str
    recalled: list[str]


def remember(state: State) -> State:
    store = get_store()
    store.put(("memories", state["user"]), uuid.uuid4().hex, {"text": state["said"]})
    return {}


def recall(state: State, runtime: Runtime) -> State:
    found = runtime.store.search(("memories", state["user"]), query=state["question"], limit=3)
    return {"recalled": [item.value["text"] for item in found]}


async def aremember(state: State) -> State:
    store = get_store()
    await store.aput(("memories", state["user"]), uuid.uuid4().hex, {"text": state["said"]})
    return {}


async def arecall(state: State, runtime: Runtime) -> State:
    found = await runtime.store.asearch(
        ("memories", state["user"]), query=state["question"], limit=3
    )
    return {"recalled": [item.value["text"] for item in found]}


def _graph(write, read) -> StateGraph:
    graph = StateGraph(State)
    graph.add_node("remember", write)
    graph.add_node("recall", read)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", "recall")
    graph.add_edge("recall", END)
    return graph


TURNS = [
    ("ada", "I keep my bike in the garage", "where is the bike"),
    ("ada", "My sister Ines lives in Porto", "where does Ines live"),
    ("bob", "I keep my bike at the office", "where is the bike"),
]


def _run_sync(client: Memory | MemoryClient) -> None:
    store = MemsvcStore(client, user_level=1, index_fields=["text"])
    app = _graph(remember, recall).compile(store=store)
    for user, said, question in TURNS:
        out = app.invoke({"user": user, "said": said, "question": question})
        assert out["recalled"][0] == said, out
    # Each user recalls only their own memories (the namespace's user is memsvc's user_id).
    bob = app.invoke({"user": "bob", "said": "I like cycling", "question": "bike"})
    assert "I keep my bike in the garage" not in bob["recalled"]
    assert {m.user_id for m in client.get_all(agent_id="langgraph").data} == {"ada", "bob"}


def test_graph_over_embedded_memory(memory: Memory) -> None:
    _run_sync(memory)


def test_graph_over_rest(server: ServerProcess) -> None:
    tenant = create_tenant(server.url, "lg-graph")
    with MemoryClient(server.url, tenant.key) as client:
        _run_sync(client)


def test_async_graph_over_rest(server: ServerProcess) -> None:
    tenant = create_tenant(server.url, "lg-agraph")

    async def run() -> None:
        async with AsyncMemoryClient(server.url, tenant.key) as client:
            store = MemsvcStore(client, user_level=1, index_fields=["text"])
            app = _graph(aremember, arecall).compile(store=store)
            for user, said, question in TURNS:
                out = await app.ainvoke({"user": user, "said": said, "question": question})
                assert out["recalled"][0] == said, out

    asyncio.run(run())
