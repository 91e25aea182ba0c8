"""``/v1/consolidate`` and ``/v1/jobs``: sleep-time consolidation on request, and job status."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep, TenantDep
from memsvc.schemas import ConsolidateRequest, JobPublic

router = APIRouter(tags=["jobs"])


@router.post("/consolidate", status_code=202)
def consolidate(body: ConsolidateRequest, principal: TenantDep, service: ServiceDep) -> JobPublic:
    """Consolidate a session, a user's or agent's sessions, or the tenant; returns the job."""
    return service.consolidate(principal.tenant_id, body)


@router.get("/jobs/{job_id}")
def get_job(job_id: str, principal: TenantDep, service: ServiceDep) -> JobPublic:
    """State, current step, counts and errors of a job."""
    return service.get_job(principal.tenant_id, job_id)
