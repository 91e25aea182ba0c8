"""``/v1/context``: a prompt-ready block of memories under a token budget."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep, TenantDep
from memsvc.schemas import ContextRequest, ContextResponse

router = APIRouter(tags=["context"])


@router.post("/context")
def context(body: ContextRequest, principal: TenantDep, service: ServiceDep) -> ContextResponse:
    """Working memory of the session plus the most relevant long-term memories, dated."""
    return service.context(principal.tenant_id, body)
