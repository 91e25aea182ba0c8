"""``/v1/sessions``: conversations, their state and working memory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ServiceDep, TenantDep
from memsvc.schemas import Page, SessionPublic

router = APIRouter(prefix="/sessions", tags=["sessions"])


@router.get("")
def list_sessions(
    principal: TenantDep,
    service: ServiceDep,
    user_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[SessionPublic]:
    return service.list_sessions(principal.tenant_id, user_id=user_id, limit=limit, cursor=cursor)


@router.get("/{session_id}")
def get_session(session_id: str, principal: TenantDep, service: ServiceDep) -> SessionPublic:
    """State (active / idle / consolidated), counts and working-memory size."""
    return service.get_session(principal.tenant_id, session_id)


@router.post("/{session_id}/close")
def close_session(session_id: str, principal: TenantDep, service: ServiceDep) -> SessionPublic:
    """Consolidate the session's working memory into long-term memory now."""
    return service.close_session(principal.tenant_id, session_id)
