"""The MCP tools, called with the ``mcp`` package's ``ClientSession`` over stdio (``memsvc mcp``
in remote mode) and over streamable HTTP (``/mcp``), seen through REST."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.conftest import ServerProcess, TenantOnServer
from tests.integration.mcp.conftest import data_of, rest, session_for, text_of

TOOLS = {
    "add_memories",
    "add_chat_turns",
    "search_memories",
    "get_context",
    "list_memories",
    "get_memory",
    "update_memory",
    "forget_memory",
    "memory_history",
}

TRANSPORTS = ["stdio", "http"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tools_are_listed_with_descriptions_and_typed_inputs(
    transport: str, server: ServerProcess, tenant: TenantOnServer
) -> None:
    async def run() -> None:
        async with session_for(transport, server, tenant.key) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert set(tools) == TOOLS
            for tool in tools.values():
                assert tool.description and len(tool.description) > 20, tool.name
                assert tool.input_schema["type"] == "object"
            search = tools["search_memories"].input_schema
            assert search["required"] == ["query"]
            assert search["properties"]["top_k"]["type"] == "integer"
            assert "description" in search["properties"]["query"]
            assert tools["forget_memory"].annotations.destructive_hint is True
            assert tools["search_memories"].annotations.read_only_hint is True
            templates = (await session.list_resource_templates()).resource_templates
            assert {t.uri_template for t in templates} == {
                "memsvc://users/{user_id}/memories",
                "memsvc://agents/{agent_id}/memories",
                "memsvc://sessions/{session_id}/memories",
            }

    asyncio.run(run())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_tool_acts_and_rest_sees_it(
    transport: str, server: ServerProcess, tenant: TenantOnServer
) -> None:
    user = f"user-{transport}"

    async def run() -> None:
        async with session_for(transport, server, tenant.key) as session:
            call = session.call_tool
            added = data_of(
                await call(
                    "add_memories",
                    {
                        "texts": ["Ada's favourite tea is oolong", "Ada lives in Lisbon"],
                        "user_id": user,
                        "metadata": {"source": "mcp"},
                        "kind": "preference",
                    },
                )
            )
            assert [m["event"] for m in added] == ["ADD", "ADD"]
            tea_id = added[0]["id"]
            seen = rest(server, tenant, "GET", f"/v1/memories/{tea_id}").json()
            assert seen["text"] == "Ada's favourite tea is oolong"
            assert seen["user_id"] == user and seen["kind"] == "preference"
            assert seen["metadata"] == {"source": "mcp"}

            found = data_of(
                await call("search_memories", {"query": "what tea does Ada like", "user_id": user})
            )
            assert found[0]["id"] == tea_id and found[0]["text"] == seen["text"]
            rest_found = rest(
                server,
                tenant,
                "POST",
                "/v1/search",
                json={"query": "what tea does Ada like", "filters": {"user_id": user}},
            ).json()["data"]
            assert [r["id"] for r in found] == [r["memory"]["id"] for r in rest_found]
            assert [r["score"] for r in found] == [r["score"] for r in rest_found]

            context = data_of(
                await call(
                    "get_context",
                    {"query": "tea", "user_id": user, "token_budget": 256},
                )
            )
            assert "oolong" in context["context"] and context["tokens"] <= 256

            listed = data_of(await call("list_memories", {"user_id": user, "limit": 1}))
            assert len(listed["memories"]) == 1 and listed["next_cursor"]
            rest_page = rest(server, tenant, "GET", "/v1/memories", params={"user_id": user})
            assert listed["memories"][0]["id"] == rest_page.json()["data"][0]["id"]

            got = data_of(await call("get_memory", {"memory_id": tea_id}))
            assert got["text"] == seen["text"]

            updated = data_of(
                await call(
                    "update_memory",
                    {"memory_id": tea_id, "text": "Ada's favourite tea is sencha"},
                )
            )
            assert updated["text"] == "Ada's favourite tea is sencha"
            seen = rest(server, tenant, "GET", f"/v1/memories/{tea_id}").json()
            assert seen["text"] == "Ada's favourite tea is sencha"
            assert seen["metadata"] == {"source": "mcp"}  # only the given fields changed

            history = data_of(await call("memory_history", {"memory_id": tea_id}))
            assert [h["op"] for h in history] == ["ADD", "UPDATE"]

            forgot = await call("forget_memory", {"memory_id": tea_id})
            assert not forgot.is_error and tea_id in text_of(forgot)
            assert rest(server, tenant, "GET", f"/v1/memories/{tea_id}").status_code == 404

            turns = data_of(
                await call(
                    "add_chat_turns",
                    {
                        "messages": [
                            {"role": "user", "content": "I am flying to Oslo on Friday"},
                            {"role": "assistant", "content": "Have a good trip!"},
                        ],
                        "user_id": user,
                        "session_id": f"chat-{transport}",
                    },
                )
            )
            assert [t["role"] for t in turns] == ["user", "assistant"]
            events = rest(
                server, tenant, "GET", "/v1/events", params={"session_id": f"chat-{transport}"}
            ).json()["data"]
            assert [e["content"] for e in events] == [
                "I am flying to Oslo on Friday",
                "Have a good trip!",
            ]

            resource = await session.read_resource(f"memsvc://users/{user}/memories")
            recent = json.loads(resource.contents[0].text)
            assert [m["text"] for m in recent] == ["Ada lives in Lisbon"]

    asyncio.run(run())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refusals_are_tool_errors_with_the_rest_message(
    transport: str, server: ServerProcess, tenant: TenantOnServer
) -> None:
    async def run() -> None:
        async with session_for(transport, server, tenant.key) as session:
            before = rest(server, tenant, "GET", "/v1/memories").json()["count"]
            bad = await session.call_tool("add_memories", {"texts": [""], "user_id": "u"})
            empty = {"text": "", "user_id": "u"}
            refused = rest(server, tenant, "POST", "/v1/memories", json=empty)
            assert refused.status_code in (400, 422), refused.text
            message = refused.json()["error"]["message"]
            assert bad.is_error and message in text_of(bad), (text_of(bad), message)
            assert rest(server, tenant, "GET", "/v1/memories").json()["count"] == before

            missing = await session.call_tool("get_memory", {"memory_id": "no-such-memory"})
            refused = rest(server, tenant, "GET", "/v1/memories/no-such-memory")
            assert refused.status_code == 404
            assert missing.is_error
            assert refused.json()["error"]["message"] in text_of(missing)
            assert "not_found (404)" in text_of(missing)

            too_many = await session.call_tool("search_memories", {"query": "x", "top_k": 10**6})
            huge = {"query": "x", "top_k": 10**6}
            refused = rest(server, tenant, "POST", "/v1/search", json=huge)
            assert refused.status_code in (400, 422)
            assert too_many.is_error
            assert refused.json()["error"]["message"] in text_of(too_many)

    asyncio.run(run())
