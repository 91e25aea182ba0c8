"""``/mcp`` is authenticated with the tenant's key, like REST, and each request acts for its
key's tenant; ``memsvc mcp`` with a wrong key answers tool errors carrying REST's 401."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from mcp import MCPError

from memsvc.sdk import Memory
from memsvc.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import ServerProcess, TenantOnServer, create_tenant
from tests.integration.mcp.conftest import data_of, http_session, stdio_session, text_of

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer msk_not-a-key"}, {"X-API-Key": "wrong"}],
    ids=["no-key", "unknown-bearer", "unknown-x-api-key"],
)
def test_a_request_without_a_valid_key_gets_401(server: ServerProcess, headers: dict) -> None:
    answer = httpx.post(
        f"{server.url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers}, timeout=30
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"
    rest = httpx.get(f"{server.url}/v1/memories", headers=headers, timeout=30)
    assert rest.status_code == 401 and rest.json() == answer.json()  # the same refusal


def test_the_admin_key_is_refused(server: ServerProcess) -> None:
    answer = httpx.post(
        f"{server.url}/mcp",
        json=INITIALIZE,
        headers={**MCP_HEADERS, "Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 403, answer.text


def test_the_mcp_client_with_a_wrong_key_is_refused(server: ServerProcess) -> None:
    async def run() -> None:
        async with http_session(server, "msk_wrong"):
            pass

    # The SDK reports the 401 as an MCPError from inside its task group; no session opens.
    with pytest.raises(BaseExceptionGroup) as caught:
        asyncio.run(run())
    assert caught.group_contains(MCPError, match="error response")


def test_stdio_with_a_wrong_key_answers_the_rest_401(server: ServerProcess) -> None:
    async def run() -> str:
        async with stdio_session(server, "msk_wrong") as session:
            result = await session.call_tool("search_memories", {"query": "anything"})
            assert result.is_error
            return text_of(result)

    refused = httpx.post(
        f"{server.url}/v1/search",
        json={"query": "anything"},
        headers={"Authorization": "Bearer msk_wrong"},
        timeout=30,
    )
    assert refused.status_code == 401
    assert f"unauthorized (401): {refused.json()['error']['message']}" in asyncio.run(run())


def test_each_http_request_acts_for_its_keys_tenant(
    server: ServerProcess, tenant: TenantOnServer
) -> None:
    other = create_tenant(server.url, "mcp-other")

    async def run() -> None:
        async with http_session(server, tenant.key) as mine:
            added = data_of(
                await mine.call_tool(
                    "add_memories", {"texts": ["the vault code is 4711"], "user_id": "shared"}
                )
            )
        async with http_session(server, other.key) as theirs:
            found = data_of(
                await theirs.call_tool(
                    "search_memories", {"query": "vault code", "user_id": "shared"}
                )
            )
            assert found == []
            missing = await theirs.call_tool("get_memory", {"memory_id": added[0]["id"]})
            assert missing.is_error and "not_found (404)" in text_of(missing)
            listed = data_of(await theirs.call_tool("list_memories", {"user_id": "shared"}))
            assert listed["memories"] == []

    asyncio.run(run())


def test_stdio_scope_defaults_come_from_flags(
    server: ServerProcess, tenant: TenantOnServer
) -> None:
    async def run() -> None:
        async with stdio_session(server, tenant.key, "--user-id", "flag-user") as session:
            added = data_of(await session.call_tool("add_memories", {"texts": ["likes chess"]}))
            assert added[0]["user_id"] == "flag-user"
            found = data_of(await session.call_tool("search_memories", {"query": "chess"}))
            assert [r["id"] for r in found] == [added[0]["id"]]
            resources = (await session.list_resources()).resources
            assert [str(r.uri) for r in resources] == ["memsvc://memories/recent"]
            recent = await session.read_resource("memsvc://memories/recent")
            assert "likes chess" in recent.contents[0].text

    asyncio.run(run())


def test_stdio_embedded_on_a_data_dir(tmp_path: Path) -> None:
    """``memsvc mcp --data-dir``: no server; what it stores is in that data dir."""
    data_dir = tmp_path / "data"

    async def run() -> str:
        args = ("--data-dir", str(data_dir), "--agent-id", "coder")
        env = {"MEMSVC_EMBEDDER": "hash"}
        async with stdio_session(None, None, *args, env=env) as session:
            added = data_of(
                await session.call_tool("add_memories", {"texts": ["the repo uses ruff"]})
            )
            found = data_of(await session.call_tool("search_memories", {"query": "ruff"}))
            assert [r["id"] for r in found] == [added[0]["id"]]
            return added[0]["id"]

    memory_id = asyncio.run(run())
    settings = Settings(data_dir=data_dir, embedder="hash")
    with Memory(settings=settings) as memory:
        stored = memory.get(memory_id)
    assert stored.text == "the repo uses ruff" and stored.agent_id == "coder"


def test_mcp_answers_after_each_start_of_the_app(service) -> None:
    """A session manager runs once: a second lifespan (a restarted app, another TestClient)
    must get a fresh one, or every start after the first fails."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.conftest import new_tenant

    tenant = new_tenant(service)
    app = create_app(service.settings, service=service)
    for _ in range(3):
        with TestClient(app) as client:
            refused = client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            assert refused.status_code == 401
            answer = client.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **tenant.headers})
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["serverInfo"]["name"]
