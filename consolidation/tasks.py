"""Celery tasks: they take JSON ids, load state, and call the pipeline (``consolidation.pipeline``).

Retries: only on :data:`~consolidation.pipeline.TRANSIENT` errors (database or Redis gone for
a moment), with exponential backoff and jitter, at most ``max_retries`` times; a job that
runs out of retries is marked failed on its row.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app, shared_task
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_init

from consolidation.dispatch import REQUEST_ID_HEADER, decay_all, deliver_webhooks
from consolidation.pipeline import TRANSIENT, run_job, scan
from memsvc.observability.context import request_scope
from memsvc.observability.metrics import serve_worker_metrics
from memsvc.service.deps import ServiceDeps, build_deps
from memsvc.service.jobs import update_job
from memsvc.settings import Settings
from memsvc.vocabulary import JobState
from stores import jobs as job_store
from stores.models import utcnow

__all__ = ["consolidate_job", "decay", "deliver_webhooks_task", "scan_sessions"]

log = logging.getLogger(__name__)


@worker_process_init.connect
def _share_cores(**_: Any) -> None:
    """Give each prefork child its share of the cores for torch (the embedder).

    N children each running torch with every core spin against each other: on 2 cores, two
    children reached 45 events/s where one reached 190.
    """
    threads = current_app.conf.get("memsvc_threads_per_process")
    if threads:
        import torch

        torch.set_num_threads(int(threads))


class ServiceTask(Task):
    """A task with the worker process's ``ServiceDeps`` (built on first use, after fork)."""

    abstract = True
    _deps: ServiceDeps | None = None

    @property
    def deps(self) -> ServiceDeps:
        if ServiceTask._deps is None:
            settings = Settings.model_validate_json(self.app.conf.memsvc_settings)
            ServiceTask._deps = build_deps(settings)
        return ServiceTask._deps

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if self.name != "memsvc.consolidate_job" or not args:
            return
        with self.deps.sessions() as session:
            job = job_store.get_job(args[0], session=session)
            errors = list(job.errors or []) if job is not None else []
            state = None if job is None else job.state
        if state is not None and state != JobState.SUCCEEDED:
            errors.append({"error": f"retries exhausted: {exc}"[:500]})
            update_job(
                self.deps, args[0], state=JobState.FAILED, finished_at=utcnow(), errors=errors
            )


# The request that started a task (X-Request-ID), sent as a message header by the API
# (consolidation.dispatch.CeleryDispatcher): the task's log lines carry it.
_scopes: dict[str, Any] = {}


@task_prerun.connect
def _enter_request(task_id: str | None = None, task: Task | None = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    rid = getattr(request, REQUEST_ID_HEADER, None) or (
        (getattr(request, "headers", None) or {}).get(REQUEST_ID_HEADER)
    )
    if task_id is not None:
        scope = request_scope(rid)
        scope.__enter__()
        _scopes[task_id] = scope


@task_postrun.connect
def _leave_request(task_id: str | None = None, **_: Any) -> None:
    scope = _scopes.pop(task_id or "", None)
    if scope is not None:
        scope.__exit__(None, None, None)


@worker_init.connect
def _serve_metrics(sender: Any = None, **_: Any) -> None:
    """The worker's own /metrics on ``MEMSVC_METRICS__WORKER_PORT`` (main process; with
    ``PROMETHEUS_MULTIPROC_DIR`` set it sums the prefork children's samples)."""
    app = getattr(sender, "app", None) or current_app
    settings = Settings.model_validate_json(app.conf.memsvc_settings)
    if settings.metrics.worker_port:
        serve_worker_metrics(settings.metrics.worker_port, settings.metrics.worker_host)


@shared_task(
    bind=True,
    base=ServiceTask,
    name="memsvc.consolidate_job",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_jitter=True,
)
def consolidate_job(self: ServiceTask, job_id: str) -> str:
    """Run one consolidation job (idempotent: a redelivered job resumes or does nothing)."""
    return run_job(self.deps, job_id)


@shared_task(bind=True, base=ServiceTask, name="memsvc.scan", acks_late=True)
def scan_sessions(self: ServiceTask) -> int:
    """Beat: jobs for idle sessions with a backlog, and re-dispatch of stale jobs."""
    job_ids = scan(self.deps)
    for job_id in job_ids:
        consolidate_job.apply_async(args=[job_id])
    if job_ids:
        log.info("dispatched %d consolidation jobs", len(job_ids))
    return len(job_ids)


@shared_task(bind=True, base=ServiceTask, name="memsvc.decay", acks_late=True)
def decay(self: ServiceTask) -> dict[str, int]:
    """Beat: the forgetting curve over every memory, then the episodic KV caches' aging."""
    return decay_all(self.deps)


@shared_task(bind=True, base=ServiceTask, name="memsvc.deliver_webhooks", acks_late=True)
def deliver_webhooks_task(self: ServiceTask) -> int:
    """Beat (every ``MEMSVC_WEBHOOKS__POLL_SECONDS``): send the webhook deliveries due now."""
    return deliver_webhooks(self.deps)
