"""``MemoryService``: one running service, made of its capabilities.

The REST routes, the embedded ``Memory`` and the workers reach every operation through it:
``service.memories``, ``service.recall``, ``service.events``, ``service.sessions``,
``service.jobs``, ``service.graph``, ``service.kv``, ``service.tenants`` (see
``memsvc.service.capabilities``). It holds the passive collaborators (``deps``), the background
runtime (threads, pacing) and the job dispatcher the composition root chose
(``consolidation.dispatch.build_service``), and owns their life: warm-up, the maintenance loop,
close.
"""

from __future__ import annotations

import time

from memsvc.observability import tracing
from memsvc.service import jobs, working
from memsvc.service.capabilities import (
    KV,
    Events,
    Extraction,
    Graph,
    Jobs,
    Memories,
    Recall,
    Scopes,
    Sessions,
    Tenants,
    Webhooks,
)
from memsvc.service.deps import ServiceDeps
from memsvc.service.idempotency import IdempotencyKeys
from memsvc.service.jobs import JobDispatcher
from memsvc.service.runtime import BackgroundRuntime
from memsvc.settings import Settings
from stores.db import ping

__all__ = ["MemoryService"]


class MemoryService:
    """Memory operations for one process. Every data call takes the caller's tenant first."""

    def __init__(
        self, deps: ServiceDeps, *, runtime: BackgroundRuntime, dispatcher: JobDispatcher
    ) -> None:
        self.deps, self.runtime, self.dispatcher = deps, runtime, dispatcher
        tracing.configure_tracing(deps.settings.tracing)  # process-wide; no import when off
        activity = runtime.activity
        self.memories = Memories(deps, activity)
        self.recall = Recall(deps, activity)
        self.events = Events(deps, activity, dispatcher)
        self.sessions = Sessions(deps, dispatcher)
        self.jobs = Jobs(deps, runtime, dispatcher)
        self.graph = Graph(deps)
        self.extraction = Extraction(deps)
        self.kv = KV(deps)
        self.tenants = Tenants(deps)
        self.scopes = Scopes(deps, runtime)  # purge (and export/import) of a whole scope
        self.webhooks = Webhooks(deps, runtime)
        self.idempotency = IdempotencyKeys(deps)  # keys outside a write's transaction
        self._upkeep: dict[str, float] = {}
        # Working memory is derived from the event log: refill it (a no-op without backlog).
        working.restore_short_term(deps, force=True)

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    def warm_up(self) -> None:
        """Load the embedder and the indexes now (servers do this before taking traffic)."""
        self.deps.warm_up()

    def start_background(self) -> None:
        """Keep indexes synced and snapshotted, and consolidate idle sessions, in the background."""
        self.runtime.start(self.maintenance_tick)
        self.webhooks.start_sender()  # embedded only: the stack's beat sends them

    def maintenance_tick(self) -> None:
        """One round of background upkeep (also callable directly, e.g. by tests).

        Embedded, it also consolidates idle sessions and decays; in the stack (Redis set) the
        Celery beat and workers do that.
        """
        self.deps.sync_indexes()
        if self.deps.indexes.snapshot_due():
            self.runtime.yield_to_requests()  # copying a large index would stall searches
            self.deps.indexes.save_if_dirty()
        jobs.flush_access(self.deps)
        self.idempotency.purge_expired(now_s=time.monotonic())
        working.restore_short_term(self.deps)  # after Redis lost writes or restarted empty
        if not self.settings.redis_url:
            jobs.maintenance(self.deps, self.dispatcher, self._upkeep)

    def rebuild_index(self) -> int:
        """Rebuild faiss and BM25 from SQL; returns how many memories are indexed."""
        return self.deps.indexes.rebuild()

    def database_problem(self) -> str | None:
        """None when the database answers; else what is wrong (readiness probes)."""
        return ping(self.deps.engine)

    def close(self) -> None:
        """Stop the background work (between its units), then release the collaborators."""
        self.runtime.close()
        self.deps.close()
