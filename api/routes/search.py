"""``/v1/search``: hybrid search over the caller's memories."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep, TenantDep
from memsvc.schemas import SearchRequest, SearchResponse

router = APIRouter(tags=["search"])


@router.post("/search")
def search(body: SearchRequest, principal: TenantDep, service: ServiceDep) -> SearchResponse:
    """Dense + BM25, fused; filters narrow by scope, kind, metadata and time."""
    return service.search(principal.tenant_id, body)
