"""Celery tasks: they take JSON ids, load state, and call the pipeline (``consolidation.pipeline``).

Retries: only on :data:`~consolidation.pipeline.TRANSIENT` errors (database or Redis gone for
a moment), with exponential backoff and jitter, at most ``max_retries`` times; a job that
runs out of retries is marked failed on its row.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app, shared_task
from celery.signals import worker_process_init

from consolidation.dispatch import decay_all
from consolidation.pipeline import TRANSIENT, run_job, scan
from memsvc.service.deps import ServiceDeps, build_deps
from memsvc.settings import Settings
from memsvc.vocabulary import JobState
from stores import jobs as job_store
from stores.models import utcnow

__all__ = ["consolidate_job", "decay", "scan_sessions"]

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
        with self.deps.sessions.begin() as session:
            job = job_store.get_job(args[0], session=session)
            if job is not None and job.state != JobState.SUCCEEDED:
                job.state, job.finished_at, job.updated_at = JobState.FAILED, utcnow(), utcnow()
                job.errors = [*(job.errors or []), {"error": f"retries exhausted: {exc}"[:500]}]


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
