"""Every FastAPI dependency, declared once and exported as ``Annotated`` aliases.

Dependencies are ``async def`` unless they block: FastAPI runs each plain ``def`` dependency in
the thread pool, and those hops cost more than a cached search.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from memsvc.errors import PermissionDeniedError
from memsvc.service import MemoryService, Principal

__all__ = ["AdminDep", "PrincipalDep", "ServiceDep", "TenantDep"]


async def get_service(request: Request) -> MemoryService:
    return request.app.state.service


ServiceDep = Annotated[MemoryService, Depends(get_service)]


def _raw_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


async def get_principal(
    service: ServiceDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    raw_key = _raw_key(authorization, x_api_key)
    cached = service.cached_principal(raw_key)
    if cached is not None:
        return cached
    return await run_in_threadpool(service.authenticate, raw_key)  # a database lookup


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
