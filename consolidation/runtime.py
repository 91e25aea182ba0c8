"""The consolidation runtime the service calls (``settings.consolidation.runtime``).

``memsvc`` resolves this module by name so that it never imports ``consolidation``; see
``memsvc.service.jobs.Runtime`` for the contract.
"""

from __future__ import annotations

import logging

import kombu.exceptions
import redis

from consolidation.pipeline import run_job as _run_job
from consolidation.pipeline import scan as _scan
from consolidation.steps.decay import decay_memories
from consolidation.steps.kv import consolidate_kv_caches
from memsvc.service.deps import ServiceDeps
from memsvc.service.jobs import flush_access

__all__ = ["decay", "enqueue", "run_job", "scan"]

log = logging.getLogger(__name__)


def run_job(deps: ServiceDeps, job_id: str) -> None:
    _run_job(deps, job_id)


def enqueue(deps: ServiceDeps, job_id: str) -> bool:
    """Send the job to the workers; False when the broker is down (the scan retries)."""
    from consolidation.app import celery_app

    app = celery_app(deps.settings)
    try:
        app.send_task("memsvc.consolidate_job", args=[job_id], retry=False)
    except (kombu.exceptions.OperationalError, redis.exceptions.RedisError, OSError) as exc:
        log.warning("could not enqueue job %s: %s", job_id, exc)
        return False
    return True


def scan(deps: ServiceDeps) -> list[str]:
    return _scan(deps)


def decay(deps: ServiceDeps) -> dict[str, int]:
    """The periodic pass: memories along the forgetting curve, then episodic KV caches."""
    flush_access(deps)
    return decay_memories(deps) | consolidate_kv_caches(deps)
