"""A real ``memsvc serve`` on loopback, and MCP sessions to it with the ``mcp`` package's own
client: over stdio (``memsvc mcp`` spawned as a subprocess, remote mode) and over streamable
HTTP (``/mcp`` on the server)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from tests.e2e.conftest import ServerProcess, TenantOnServer, create_tenant, start_server

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = start_server(tmp_path_factory.mktemp("mcp") / "data", {})
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def tenant(server: ServerProcess) -> TenantOnServer:
    return create_tenant(server.url, "mcp")


@asynccontextmanager
async def stdio_session(
    server: ServerProcess | None,
    key: str | None,
    *args: str,
    env: dict[str, str] | None = None,
    errlog_path: Path | None = None,
) -> AsyncIterator[ClientSession]:
    """``memsvc mcp`` against ``server`` (remote mode), key and URL from the environment;
    without a server, ``args`` say where the embedded data is."""
    remote = {"MEMSVC_URL": server.url, "MEMSVC_API_KEY": key or ""} if server else {}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "memsvc", "mcp", *args],
        env={**remote, **(env or {})},
        cwd=ROOT,
    )
    with (errlog_path or Path("/dev/null")).open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


@asynccontextmanager
async def http_session(server: ServerProcess, key: str) -> AsyncIterator[ClientSession]:
    """The server's ``/mcp`` with ``key`` as ``Authorization: Bearer``."""
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def session_for(transport: str, server: ServerProcess, key: str, *args: str):
    if transport == "stdio":
        return stdio_session(server, key, *args)
    return http_session(server, key)


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def data_of(result: CallToolResult) -> Any:
    """A tool's structured result (lists come wrapped as ``{"result": [...]}``)."""
    assert not result.is_error, text_of(result)
    data = result.structured_content
    if data is None:
        return json.loads(text_of(result))
    return data["result"] if set(data) == {"result"} else data


def rest(server: ServerProcess, tenant: TenantOnServer, method: str, path: str, **kw: Any):
    return httpx.request(method, server.url + path, headers=tenant.headers, timeout=30, **kw)
