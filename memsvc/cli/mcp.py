"""``memsvc mcp``: the MCP server over stdio, for desktop and coding agents.

Remote by default (a memsvc server at ``--url``/``MEMSVC_URL`` with ``--api-key``/
``MEMSVC_API_KEY``); ``--data-dir`` serves an embedded service instead (the local tenant).
stdout carries the protocol, so everything else goes to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from memsvc.integrations.mcp import ScopeDefaults

__all__ = ["mcp_command"]


def mcp_command(
    url: Annotated[
        str | None,
        typer.Option(envvar="MEMSVC_URL", help="The memsvc server (default 127.0.0.1:8765)."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="MEMSVC_API_KEY", help="The tenant's API key.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Serve an embedded service on this data directory, not a server."),
    ] = None,
    user_id: Annotated[
        str | None, typer.Option(envvar="MEMSVC_USER_ID", help="Default user scope.")
    ] = None,
    agent_id: Annotated[
        str | None, typer.Option(envvar="MEMSVC_AGENT_ID", help="Default agent scope.")
    ] = None,
    session_id: Annotated[
        str | None, typer.Option(envvar="MEMSVC_SESSION_ID", help="Default session scope.")
    ] = None,
) -> None:
    """Serve memsvc's memory tools over MCP (stdio): add, search, context, list, update,
    forget, history; resources for a scope's recent memories."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    try:
        from memsvc.integrations.mcp import ScopeDefaults
    except ModuleNotFoundError as exc:
        if exc.name != "mcp" and not (exc.name or "").startswith("mcp."):
            raise
        typer.echo("error: `memsvc mcp` needs the MCP SDK: pip install 'memsvc[mcp]'", err=True)
        raise typer.Exit(code=1) from exc
    asyncio.run(_serve(url, api_key, data_dir, ScopeDefaults(user_id, agent_id, session_id)))


async def _serve(
    url: str | None, api_key: str | None, data_dir: Path | None, defaults: ScopeDefaults
) -> None:
    from memsvc.integrations.mcp import build_server
    from memsvc.sdk import AsyncMemoryClient

    service = None
    if data_dir is None:
        client = AsyncMemoryClient(url, api_key)
    else:
        # A composition root, like `memsvc serve`: it may build the service.
        from consolidation.dispatch import build_service
        from memsvc.sdk.in_process import AsyncInProcessTransport
        from memsvc.service import LOCAL_TENANT_ID, Principal
        from memsvc.settings import Settings

        service = build_service(Settings().model_copy(update={"data_dir": data_dir}))
        service.tenants.ensure_local_key()
        principal = Principal(tenant_id=LOCAL_TENANT_ID, key_id="embedded", name="mcp")
        client = AsyncMemoryClient(transport=AsyncInProcessTransport(service, principal))
        service.warm_up()
        service.start_background()
    try:
        await build_server(lambda _ctx: client, defaults).run_stdio_async()
    finally:
        await client.aclose()
        if service is not None:
            service.close()
