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
    """The database answers and the indexes are loaded."""
    problem = service.database_problem()
    if problem is not None:
        return JSONResponse({"status": "unavailable", "database": problem}, status_code=503)
    return {
        "status": "ready",
        "database": "ok",
        "indexed_memories": len(service.deps.indexes.vectors),
    }
