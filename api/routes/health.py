"""Liveness and readiness probes (no auth)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(service: ServiceDep) -> dict[str, object] | JSONResponse:
    """The database (and Redis, when configured) answers and the indexes are loaded."""
    retry = {"Retry-After": str(service.settings.dependencies.retry_after_seconds)}
    problem = service.database_problem()
    if problem is not None:
        body = {"status": "unavailable", "database": problem}
        return JSONResponse(body, status_code=503, headers=retry)
    if service.settings.redis_url and not service.deps.short_term.ping():
        body = {"status": "unavailable", "database": "ok", "redis": "error"}
        return JSONResponse(body, status_code=503, headers=retry)
    return {
        "status": "ready",
        "database": "ok",
        "indexed_memories": len(service.deps.indexes.vectors),
    }
