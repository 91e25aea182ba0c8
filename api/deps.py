"""Every FastAPI dependency, declared once and exported as ``Annotated`` aliases.

Dependencies are ``async def`` unless they block: FastAPI runs each plain ``def`` dependency in
the thread pool, and those hops cost more than a cached search.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from memsvc.errors import PermissionDeniedError
from memsvc.observability.context import current as request_context
from memsvc.service import IdempotentRequest, MemoryService, Principal

__all__ = [
    "IDEMPOTENCY_STATE",
    "AdminDep",
    "IdempotencyDep",
    "PrincipalDep",
    "ServiceDep",
    "TenantDep",
    "get_idempotency",
    "raw_api_key",
]


async def get_service(request: Request) -> MemoryService:
    return request.app.state.service


ServiceDep = Annotated[MemoryService, Depends(get_service)]


def raw_api_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key of a request: ``X-API-Key``, else ``Authorization: Bearer`` (or ``Token``,
    the scheme mem0ai's client sends)."""
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() in ("bearer", "token") and token.strip():
            return token.strip()
    return None


async def get_principal(
    service: ServiceDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    raw_key = raw_api_key(authorization, x_api_key)
    principal = service.tenants.cached_principal(raw_key)
    if principal is None:
        # A database lookup: off the event loop.
        principal = await run_in_threadpool(service.tenants.authenticate, raw_key)
    info = request_context()
    if info is not None:  # log lines of this request name its tenant
        info.tenant = principal.tenant_id
    limiter = service.deps.rate_limiter
    if limiter.enabled:  # per key; Redis (shared by the replicas) is network I/O
        if limiter.blocking:
            await run_in_threadpool(limiter.check, principal.key_id)
        else:
            limiter.check(principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_tenant(principal: PrincipalDep) -> Principal:
    """A principal that acts for a tenant (data routes); the admin key has no tenant data."""
    if principal.tenant_id is None:
        raise PermissionDeniedError("the admin key manages tenants; use a tenant's key for data")
    return principal


TenantDep = Annotated[Principal, Depends(get_tenant)]


async def get_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise PermissionDeniedError("this route needs the admin key")
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]


# Where api.idempotency leaves a key for the route (in the request's scope state).
IDEMPOTENCY_STATE = "memsvc.idempotency"


async def get_idempotency(request: Request) -> IdempotentRequest | None:
    """The request's ``Idempotency-Key`` (checked by ``api.idempotency``), for a route that
    stores its reply in the transaction of its write; ``None`` without the header."""
    held = request.scope.get("state", {}).get(IDEMPOTENCY_STATE)
    if held is None:
        return None
    route = request.scope.get("route")  # the reply kept is the route's success status
    return held.request(getattr(route, "status_code", None) or 200)


IdempotencyDep = Annotated[IdempotentRequest | None, Depends(get_idempotency)]
