"""How jobs reach the pipeline, and the composition root of a service that consolidates.

``memsvc`` never imports this package: the entry points (``memsvc serve`` and the other CLI
commands, the embedded ``Memory``, the Celery worker, tests and benchmarks) build their
service with :func:`build_service`, which hands it the dispatcher for its mode:

- :class:`InProcessDispatcher` (embedded, no ``MEMSVC_REDIS_URL``): jobs run on the service's
  job thread, paced by its background runtime (they wait for a pause in requests);
- :class:`CeleryDispatcher` (the stack): jobs go to the Celery workers through Redis.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import kombu.exceptions
import redis

from consolidation.pipeline import run_job, scan
from consolidation.steps.decay import decay_memories
from consolidation.steps.kv import consolidate_kv_caches
from memsvc.observability.context import current_request_id
from memsvc.service import MemoryService, webhooks
from memsvc.service.deps import ServiceDeps, build_deps
from memsvc.service.jobs import JobDispatcher, flush_access
from memsvc.service.runtime import UNPACED, BackgroundRuntime
from memsvc.settings import Settings

if TYPE_CHECKING:
    from memsvc.embeddings import Embedder

__all__ = [
    "REQUEST_ID_HEADER",
    "CeleryDispatcher",
    "InProcessDispatcher",
    "build_service",
    "decay_all",
    "deliver_webhooks",
]

#: The Celery message header carrying the id of the request that started a job.
REQUEST_ID_HEADER = "memsvc_request_id"

log = logging.getLogger(__name__)


def deliver_webhooks(deps: ServiceDeps) -> int:
    """Send the webhook deliveries due now (the beat's task; the embedded webhook thread)."""
    return webhooks.deliver_due(deps)


def decay_all(deps: ServiceDeps) -> dict[str, int]:
    """The periodic pass: memories along the forgetting curve, then episodic KV caches."""
    flush_access(deps)
    return decay_memories(deps) | consolidate_kv_caches(deps)


class InProcessDispatcher:
    """Jobs in this process: on the runtime's job thread, or in the caller's thread."""

    def __init__(self, deps: ServiceDeps, runtime: BackgroundRuntime) -> None:
        self.deps, self.runtime = deps, runtime

    def submit(self, job_id: str) -> None:
        # The job thread runs in a copy of this context: its log lines name the request.
        self.runtime.submit(run_job, self.deps, job_id, pace=self.runtime)

    def run(self, job_id: str, *, paced: bool = False) -> None:
        run_job(self.deps, job_id, pace=self.runtime if paced else UNPACED)

    def scan(self) -> list[str]:
        return scan(self.deps)

    def decay(self) -> dict[str, int]:
        return decay_all(self.deps)


class CeleryDispatcher(InProcessDispatcher):
    """Jobs on the Celery workers (Redis broker); ``run`` still runs in this thread."""

    def submit(self, job_id: str) -> None:
        """Send the job to the workers; a broker that is down leaves it queued (the scan
        dispatches it again)."""
        from consolidation.app import celery_app

        app = celery_app(self.deps.settings)
        try:
            rid = current_request_id()
            headers = {REQUEST_ID_HEADER: rid} if rid else None
            app.send_task("memsvc.consolidate_job", args=[job_id], retry=False, headers=headers)
        except (kombu.exceptions.OperationalError, redis.exceptions.RedisError, OSError) as exc:
            log.warning(
                "broker unreachable; job %s stays queued for the next scan: %s", job_id, exc
            )


def build_service(settings: Settings, *, embedder: Embedder | None = None) -> MemoryService:
    """A service over ``settings`` whose jobs run in-process (embedded) or on the Celery
    workers (``MEMSVC_REDIS_URL`` set): migrate, connect; the embedder and indexes load on
    first use."""
    deps = build_deps(settings, embedder=embedder)
    runtime = BackgroundRuntime(settings.consolidation)
    kind = CeleryDispatcher if settings.redis_url else InProcessDispatcher
    dispatcher: JobDispatcher = kind(deps, runtime)
    return MemoryService(deps, runtime=runtime, dispatcher=dispatcher)
