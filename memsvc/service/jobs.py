"""Consolidation jobs as the service sees them: create, dispatch, report.

A job is a SQL row (``stores.jobs``). Where it runs is the :class:`JobDispatcher`'s business,
handed in by the composition root (``consolidation.dispatch``), so that ``memsvc`` never
imports ``consolidation`` (the arrow points the other way):

- embedded (no ``MEMSVC_REDIS_URL``): on the service's own job thread;
- stack: as a Celery task on a worker. If the broker cannot be reached the row stays
  ``queued`` and the beat's scan dispatches it later, so a request is never lost.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from memsvc.errors import InvalidRequestError, NotFoundError
from memsvc.schemas import ConsolidateRequest, JobPublic
from memsvc.service import webhooks
from memsvc.service.deps import ServiceDeps
from memsvc.vocabulary import JobState
from stores import events as event_store
from stores import jobs as store
from stores import memories as memory_store
from stores.models import JobRow, utcnow

__all__ = [
    "JobDispatcher",
    "consolidate_closed",
    "create_job",
    "flush_access",
    "get_job",
    "job_public",
    "list_jobs",
    "maintenance",
    "new_job_row",
    "request_consolidation",
    "trigger_session",
    "update_job",
]

log = logging.getLogger(__name__)


class JobDispatcher(Protocol):
    """How consolidation jobs reach the pipeline (``consolidation.dispatch`` has the two)."""

    def submit(self, job_id: str) -> None:
        """Start a queued job in the background (the job thread, or a Celery worker); a
        broker that cannot be reached leaves it queued for the next scan."""

    def run(self, job_id: str, *, paced: bool = False) -> None:
        """Run a job to the end in this thread (idempotent). ``paced``: this thread is the
        background runtime's (the embedded maintenance loop), so the job yields to requests."""

    def scan(self) -> list[str]:
        """Create jobs for idle sessions with a backlog; returns the jobs to run."""

    def decay(self) -> dict[str, int]:
        """One decay pass over every tenant (memories, then episodic KV caches)."""


def job_public(row: JobRow) -> JobPublic:
    return JobPublic(
        id=row.id,
        kind=row.kind,
        trigger=row.trigger,
        scope=row.scope or {},
        state=row.state,  # type: ignore[arg-type]
        step=row.step,
        counts=row.counts or {},
        errors=row.errors or [],
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def update_job(
    deps: ServiceDeps, job_id: str, *, sessions_done: Sequence[str] = (), **values: Any
) -> None:
    """Change a job's row. When it reaches a final state, the ``job.finished`` webhook event
    (and ``session.consolidated`` for each of ``sessions_done`` of a job that succeeded) is
    written in the same transaction."""
    with deps.sessions.begin() as session:
        store.update_job(job_id, {**values, "updated_at": utcnow()}, session=session)
        state = values.get("state")
        if state is None or not JobState(state).finished:
            return
        row = store.get_job(job_id, session=session)
        if row is None:
            return
        session.refresh(row)
        public = job_public(row).model_dump(mode="json")
        events = [("job.finished", {"job": public})]
        if state == JobState.SUCCEEDED:
            events += [
                ("session.consolidated", {"session_id": sid, "job_id": job_id})
                for sid in sessions_done
            ]
        webhooks.enqueue(session, row.tenant_id, events)


def new_job_row(tenant_id: str, trigger: str, scope: dict[str, Any]) -> JobRow:
    now = utcnow()
    return JobRow(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        kind="consolidate",
        trigger=trigger,
        scope={k: v for k, v in scope.items() if v is not None},
        state=JobState.QUEUED,
        counts={},
        errors=[],
        attempts=0,
        created_at=now,
        updated_at=now,
    )


def create_job(deps: ServiceDeps, tenant_id: str, trigger: str, scope: dict[str, Any]) -> JobRow:
    row = new_job_row(tenant_id, trigger, scope)
    with deps.sessions.begin() as session:
        store.add_job(row, session=session)
    return row


def get_job(deps: ServiceDeps, tenant_id: str, job_id: str) -> JobPublic:
    with deps.sessions() as session:
        row = store.get_job(job_id, tenant_id=tenant_id, session=session)
    if row is None:
        raise NotFoundError(f"job {job_id} not found", field="job_id")
    return job_public(row)


def list_jobs(deps: ServiceDeps, tenant_id: str, *, limit: int = 50) -> list[JobPublic]:
    """The tenant's newest jobs, newest first (the inspector's jobs page)."""
    if not 1 <= limit <= 1000:
        raise InvalidRequestError("limit must be between 1 and 1000", field="limit")
    with deps.sessions() as session:
        rows = store.recent_jobs(tenant_id, limit=limit, session=session)
        return [job_public(r) for r in rows]


def request_consolidation(
    deps: ServiceDeps, dispatcher: JobDispatcher, tenant_id: str, request: ConsolidateRequest
) -> JobPublic:
    """``POST /v1/consolidate``: a job over the scope, started at once; returns it queued."""
    scope = request.model_dump(exclude_none=True)
    with deps.sessions() as session:
        sessions = event_store.sessions_in_scope(tenant_id, **request.model_dump(), session=session)
    if request.session_id is not None and not sessions:
        raise NotFoundError(f"session {request.session_id} not found", field="session_id")
    if len(sessions) > deps.settings.max_batch_size:
        raise InvalidRequestError(
            f"{len(sessions)} sessions in scope; the limit is {deps.settings.max_batch_size}: "
            "narrow it with user_id, agent_id or session_id",
            field="scope",
        )
    row = create_job(deps, tenant_id, "request", scope)
    dispatcher.submit(row.id)
    return job_public(row)


def trigger_session(
    deps: ServiceDeps, dispatcher: JobDispatcher, tenant_id: str, session_id: str, trigger: str
) -> str:
    """A job for one session (overflow, close), unless one is already waiting to start."""
    with deps.sessions() as session:
        waiting = store.active_job_for_session(
            tenant_id, session_id, states=(JobState.QUEUED,), session=session
        )
    if waiting is not None:
        return waiting.id
    row = create_job(deps, tenant_id, trigger, {"session_id": session_id})
    dispatcher.submit(row.id)
    return row.id


def consolidate_closed(
    deps: ServiceDeps, dispatcher: JobDispatcher, tenant_id: str, session_id: str
) -> None:
    """After a session is closed: consolidate it now (embedded) or on a worker (stack)."""
    if deps.settings.redis_url:
        trigger_session(deps, dispatcher, tenant_id, session_id, "close")
        return
    row = create_job(deps, tenant_id, "close", {"session_id": session_id})
    dispatcher.run(row.id)


def flush_access(deps: ServiceDeps) -> int:
    """Write the retrievals counted in memory to SQL (reinforcement against decay)."""
    counts = deps.access.take()
    if counts:
        with deps.sessions.begin() as session:
            memory_store.record_access(counts, utcnow(), session=session)
    return len(counts)


def maintenance(deps: ServiceDeps, dispatcher: JobDispatcher, state: dict[str, float]) -> None:
    """Embedded only: what the beat does in the stack (scan, run due jobs, decay)."""
    for job_id in dispatcher.scan():
        dispatcher.run(job_id, paced=True)
    now = time.monotonic()
    if now - state.get("decayed", 0.0) >= deps.settings.consolidation.decay_seconds:
        state["decayed"] = now
        dispatcher.decay()
