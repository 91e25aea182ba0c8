"""``/mcp``: the MCP server (``memsvc.integrations.mcp``) over streamable HTTP.

Authenticated like REST: each request carries a tenant's key (``Authorization: Bearer`` or
``X-API-Key``), checked (and rate limited) before the MCP transport sees a byte; a missing,
unknown or revoked key is a JSON 401, the admin key a 403. Each request's tools act for its
key's tenant: the server runs stateless (no MCP session outlives a request), so no session can
be carried over to another key. The tools call an ``AsyncMemoryClient`` over the in-process
transport, the embedded ``Memory``'s entry into the operations table.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from api.deps import get_principal
from api.errors import error_response
from memsvc.errors import APIStatusError, PermissionDeniedError
from memsvc.integrations.mcp import build_server

# Not `memsvc.sdk`: its lazy `Memory` would make the API depend on the workers' package.
from memsvc.sdk._async.client import AsyncMemoryClient
from memsvc.sdk.in_process import AsyncInProcessTransport

__all__ = ["MCP_PATH", "mount_mcp"]

MCP_PATH = "/mcp"
# Where the endpoint leaves the request's principal for the tools (the request's scope state).
_PRINCIPAL = "memsvc.mcp.principal"


def _client_for(ctx: Context | None) -> AsyncMemoryClient:
    request: Any = ctx.request_context.request if ctx is not None else None
    if request is None:  # never over HTTP: every resource and tool here takes a context
        raise RuntimeError("an MCP call over HTTP without its request")
    principal = request.scope["state"][_PRINCIPAL]
    service = request.scope["app"].state.service
    return AsyncMemoryClient(transport=AsyncInProcessTransport(service, principal))


class MCPEndpoint:
    """The ASGI endpoint at ``/mcp``: the key first, then the MCP transport."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        try:
            principal = await get_principal(
                scope["app"].state.service, headers.get("authorization"), headers.get("x-api-key")
            )
            if principal.tenant_id is None:
                raise PermissionDeniedError("the admin key has no memories; use a tenant's key")
        except APIStatusError as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[_PRINCIPAL] = principal
        await self.manager.handle_request(scope, receive, send)


def mount_mcp(app: FastAPI) -> Any:
    """Add ``/mcp`` to ``app``; returns what makes the context manager each start of its
    lifespan must enter."""
    server = build_server(_client_for)
    # The SDK logs every stateless request at INFO ("Terminating session"): not server news.
    sdk_log = logging.getLogger("mcp")
    if sdk_log.level == logging.NOTSET:
        sdk_log.setLevel(logging.WARNING)

    def fresh_manager() -> StreamableHTTPSessionManager:
        # Stateless, JSON answers: each POST is complete in itself, so any replica can answer
        # it and no session holds a tenant's identity between requests.
        # No DNS-rebinding check: that guards cookie- or network-trusting servers; every
        # request here carries its key.
        server.streamable_http_app(
            json_response=True,
            stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        return server.session_manager

    endpoint = MCPEndpoint(fresh_manager())
    app.router.add_route(
        MCP_PATH, endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False
    )

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        # A session manager runs once: every start of the app (each TestClient, a restarted
        # lifespan) gets a fresh one.
        endpoint.manager = fresh_manager()
        async with endpoint.manager.run():
            yield

    return running
