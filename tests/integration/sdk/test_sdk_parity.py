"""The same behavioural scenarios against the embedded ``Memory`` and the REST ``MemoryClient``."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

import memsvc
from api.main import create_app
from memsvc import AsyncMemoryClient, Memory, MemoryClient
from memsvc.errors import AuthError, InvalidRequestError, MemsvcError, NotFoundError
from memsvc.service import MemoryService
from tests.conftest import TenantKey

SURFACE = [
    "add",
    "search",
    "get",
    "get_all",
    "update",
    "delete",
    "delete_all",
    "history",
    "add_events",
    "get_events",
    "get_context",
    "get_session",
    "list_sessions",
    "close_session",
    "consolidate",
    "get_job",
    "list_entities",
    "get_entity",
    "list_relations",
    "get_extraction_config",
    "set_extraction_config",
    "list_extraction_config_versions",
    "restore",
]

_EVENTS = [{"role": "user", "content": "my flight to Lisbon leaves on Friday"}]


@pytest.fixture(params=["embedded", "rest"])
def sdk(request, service: MemoryService, tenant: TenantKey, client: TestClient) -> Iterator:
    if request.param == "embedded":
        memory = Memory(service=service, tenant_id=tenant.tenant_id)
    else:
        memory = MemoryClient(api_key=tenant.key, http_client=client)
    yield memory
    memory.close()


def test_add_search_get(sdk) -> None:
    added = sdk.add(
        ["Joanna is training for a marathon", "Joanna hates running in the rain"],
        user_id="joanna",
        metadata={"source": "chat"},
    )
    assert [m.event for m in added] == ["ADD", "ADD"]
    assert added[0].metadata == {"source": "chat"} and added[0].user_id == "joanna"
    again = sdk.add(
        "Joanna is training for a marathon", user_id="joanna", metadata={"source": "chat"}
    )
    assert again[0].event == "NOOP" and again[0].id == added[0].id

    results = sdk.search("marathon training", user_id="joanna", top_k=1)
    assert [r.memory.id for r in results] == [added[0].id]
    assert sdk.search("marathon", user_id="nobody") == []
    assert sdk.get(added[1].id).text == "Joanna hates running in the rain"


def test_get_all_pages_and_filters(sdk) -> None:
    sdk.add([f"fact {n}" for n in range(5)], user_id="u", kind="note")
    sdk.add("other user fact", user_id="v")
    first = sdk.get_all(user_id="u", limit=3)
    assert first.count == 3 and first.next_cursor
    second = sdk.get_all(user_id="u", limit=3, cursor=first.next_cursor)
    assert second.count == 2 and second.next_cursor is None
    assert {m.text for m in first.data + second.data} == {f"fact {n}" for n in range(5)}
    assert sdk.get_all(filters={"kind": "note"}).count == 5


def test_update_unset_and_clear(sdk) -> None:
    (memory,) = sdk.add("likes green tea", user_id="u", metadata={"k": "v"})
    updated = sdk.update(memory.id, importance=0.8)
    assert updated.metadata == {"k": "v"} and updated.importance == 0.8  # untouched
    cleared = sdk.update(memory.id, metadata=None)
    assert cleared.metadata == {}
    renamed = sdk.update(memory.id, text="likes black tea")
    assert renamed.text == "likes black tea"
    ops = [h.op for h in sdk.history(memory.id)]
    assert ops == ["ADD", "UPDATE", "UPDATE", "UPDATE"]


def test_delete_and_delete_all(sdk) -> None:
    a, b = sdk.add(["a thing", "b thing"], user_id="u")
    sdk.delete(a.id)
    with pytest.raises(NotFoundError) as info:
        sdk.get(a.id)
    assert a.id in info.value.message
    assert sdk.delete_all(user_id="u") == 1
    assert sdk.get_all(user_id="u").count == 0
    assert [h.op for h in sdk.history(b.id)] == ["ADD", "DELETE"]


def test_errors_are_the_same_classes_and_fields(sdk) -> None:
    with pytest.raises(InvalidRequestError) as info:
        sdk.add("")
    assert info.value.field == "text" and info.value.status_code == 422
    with pytest.raises(InvalidRequestError) as info:
        sdk.add(["ok", " "])
    assert info.value.field == "items[1].text"
    with pytest.raises(InvalidRequestError) as info:
        sdk.search("x", top_k=0)
    assert info.value.field == "top_k"
    with pytest.raises(NotFoundError):
        sdk.update("missing", text="x")
    with pytest.raises(InvalidRequestError):
        sdk.delete_all()
    sdk.close()
    with pytest.raises(MemsvcError, match="closed"):
        sdk.get_all()


def test_a_callers_own_key_returns_the_first_reply(sdk) -> None:
    first = sdk.add(["the boiler code is 4471"], user_id="u", idempotency_key="order-17")
    again = sdk.add(["the boiler code is 4471"], user_id="u", idempotency_key="order-17")
    assert [m.id for m in again] == [m.id for m in first]
    assert [m.event for m in again] == ["ADD"]  # the first reply, not a NOOP
    events = sdk.add_events(_EVENTS, user_id="u", session_id="s", idempotency_key="turn-1")
    assert sdk.add_events(_EVENTS, user_id="u", session_id="s", idempotency_key="turn-1") == events
    assert sdk.get_events(session_id="s").count == 1
    with pytest.raises(InvalidRequestError) as info:
        sdk.add(["another text"], user_id="u", idempotency_key="order-17")
    assert info.value.field == "Idempotency-Key"
    assert sdk.get_all(user_id="u").count == 1


def test_rest_client_auth_error(client: TestClient) -> None:
    with MemoryClient(api_key="wrong", http_client=client) as bad, pytest.raises(AuthError) as info:
        bad.get_all()
    assert info.value.response.status_code == 401


def test_transport_error_when_server_is_down() -> None:
    down = MemoryClient("http://127.0.0.1:9", api_key="k", timeout=2)
    with down, pytest.raises(memsvc.TransportError):
        down.get_all()


def test_async_client_scenario(service: MemoryService, tenant: TenantKey) -> None:
    app = create_app(service.settings, service=service)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        http = httpx.AsyncClient(transport=transport, base_url="http://memsvc")
        async with AsyncMemoryClient(api_key=tenant.key, http_client=http) as client:
            (memory,) = await client.add("async memories work", user_id="u")
            hits = await client.search("async memories", user_id="u")
            assert hits[0].memory.id == memory.id
            assert (await client.update(memory.id, importance=0.1)).importance == 0.1
            assert [h.op for h in await client.history(memory.id)] == ["ADD", "UPDATE"]
            await client.delete(memory.id)
            with pytest.raises(NotFoundError):
                await client.get(memory.id)

    asyncio.run(scenario())


def _signature(cls: type, name: str) -> list[tuple[str, object, object]]:
    params = list(inspect.signature(getattr(cls, name)).parameters.values())[1:]
    return [(p.name, p.kind, p.default) for p in params]


def test_surfaces_match() -> None:
    for name in SURFACE:
        sync = _signature(MemoryClient, name)
        assert sync == _signature(AsyncMemoryClient, name), name
        assert sync == _signature(Memory, name), name
        assert inspect.iscoroutinefunction(getattr(AsyncMemoryClient, name))


def test_public_exports() -> None:
    public = {n for n in dir(memsvc) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(memsvc.__all__)
    for module in (memsvc.sdk, memsvc.errors, memsvc.schemas):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


def test_the_rest_client_imports_no_server_code() -> None:
    """``from memsvc import MemoryClient`` loads httpx and pydantic, none of the server's
    packages (a fresh interpreter: this one has them all loaded)."""
    import subprocess
    import sys

    heavy = [
        "torch", "faiss", "sqlalchemy", "numba", "transformers", "safetensors", "numpy",
        "scipy", "networkx", "redis", "alembic", "celery", "fastapi", "sentence_transformers",
        "stores", "kv_cartridges", "consolidation", "api", "memsvc.service", "memsvc.settings",
    ]  # fmt: skip
    probe = (
        "import sys\n"
        "from memsvc import MemoryClient, AsyncMemoryClient, InvalidRequestError\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    # The embedded Memory and Settings still come from the top-level package, on first use.
    assert memsvc.Memory is Memory and memsvc.Settings.__name__ == "Settings"
