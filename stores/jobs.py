"""Background job rows (consolidation). Persistence only: no business rules.

A job's state lives here, not in a Celery result backend, so it survives broker restarts and is
visible to every process over the same database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from memsvc.vocabulary import JobState
from stores.models import JobRow

__all__ = [
    "ACTIVE_STATES",
    "active_job_for_session",
    "add_job",
    "get_job",
    "jobs_stale_since",
    "recent_jobs",
    "update_job",
]

ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


def add_job(row: JobRow, *, session: Session) -> None:
    session.add(row)
    session.flush()


def get_job(job_id: str, *, tenant_id: str | None = None, session: Session) -> JobRow | None:
    """The job, or None; with ``tenant_id`` a job of another tenant is None too."""
    row = session.get(JobRow, job_id)
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        return None
    return row


def update_job(job_id: str, values: dict[str, Any], *, session: Session) -> None:
    session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))


def active_job_for_session(
    tenant_id: str, session_id: str, *, states: Sequence[str], session: Session
) -> JobRow | None:
    """A job in one of ``states`` whose scope is exactly this session (newest first)."""
    stmt = (
        select(JobRow)
        .where(JobRow.tenant_id == tenant_id, JobRow.state.in_(list(states)))
        .order_by(JobRow.created_at.desc())
        .limit(50)
    )
    for row in session.scalars(stmt):
        if (row.scope or {}).get("session_id") == session_id:
            return row
    return None


def jobs_stale_since(cutoff: datetime, *, limit: int, session: Session) -> list[JobRow]:
    """Queued or running jobs not updated since ``cutoff`` (lost messages, dead workers)."""
    stmt = (
        select(JobRow)
        # other kinds (cartridge training) run in the process that made them: not redispatched
        .where(JobRow.kind == "consolidate")
        .where(JobRow.state.in_(ACTIVE_STATES), JobRow.updated_at < cutoff)
        .order_by(JobRow.updated_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def recent_jobs(tenant_id: str, *, limit: int, session: Session) -> list[JobRow]:
    """The tenant's newest jobs, newest first."""
    stmt = (
        select(JobRow)
        .where(JobRow.tenant_id == tenant_id)
        .order_by(JobRow.created_at.desc(), JobRow.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))
