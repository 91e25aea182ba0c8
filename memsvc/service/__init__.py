"""``MemoryService``: the one facade REST routes, the embedded SDK and the workers go through.

It only delegates: each capability lives in its own module of this package.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import redis

from memsvc.embeddings import Embedder
from memsvc.schemas import (
    ApiKeyCreated,
    ApiKeyPublic,
    ConsolidateRequest,
    ContextRequest,
    ContextResponse,
    EntityDetail,
    EntityPublic,
    EventBatch,
    EventFilter,
    EventPublic,
    JobPublic,
    MemoryCreate,
    MemoryFilter,
    MemoryHistoryEntry,
    MemoryPublic,
    MemoryWriteResult,
    Page,
    RelationPublic,
    SearchRequest,
    SearchResponse,
    SessionPublic,
    TenantPublic,
)
from memsvc.service import (
    context,
    events,
    graph,
    jobs,
    memories,
    search,
    sessions,
    tenants,
    working,
)
from memsvc.service.deps import ServiceDeps, build_deps
from memsvc.service.idempotency import IdempotencyKeys, IdempotentRequest
from memsvc.service.tenants import LOCAL_TENANT_ID, Principal
from memsvc.settings import Settings
from stores.db import ping

if TYPE_CHECKING:
    from pathlib import Path

    from kv_cartridges.format import KVContainer
    from kv_cartridges.quant import LayerwiseSpec, QuantSpec
    from memsvc.schemas import CartridgeCompose, KVKind, KVLookupRequest, KVLookupResult, KVPublic
    from memsvc.schemas.cartridge_train import CartridgeTrainRequest
    from memsvc.service.kv import KVContent

__all__ = ["LOCAL_TENANT_ID", "IdempotentRequest", "MemoryService", "Principal", "ServiceDeps"]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _serving(
    method: Callable[Concatenate[MemoryService, _P], _R],
) -> Callable[Concatenate[MemoryService, _P], _R]:
    """Mark a call as foreground work: embedded consolidation waits while it runs.

    Marked: the hot paths that embed or search (``add``, ``add_events``, ``search``,
    ``context``). Cheap reads such as ``get``/``list`` are not, so a client polling them does
    not hold consolidation back; nor are rarer writes (``update``, KV and cartridge calls).
    """

    @functools.wraps(method)
    def wrapper(self: MemoryService, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.deps.activity.request():
            return method(self, *args, **kwargs)

    return wrapper


class MemoryService:
    """Memory operations for one process. Every data method takes the caller's tenant first."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps
        self._auth = tenants.Authenticator(deps)
        self._upkeep: dict[str, float] = {}
        self.idempotency = IdempotencyKeys(deps)  # outside a write's transaction
        # Working memory is derived from the event log: refill it (a no-op without backlog).
        working.restore_short_term(deps, force=True)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, embedder: Embedder | None = None
    ) -> MemoryService:
        """Migrate, load the embedder, open the indexes."""
        return cls(build_deps(settings, embedder=embedder))

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    def warm_up(self) -> None:
        """Load the embedder and the indexes now (servers do this before taking traffic)."""
        self.deps.warm_up()

    def start_background(self) -> None:
        """Keep indexes synced and snapshotted, and consolidate idle sessions, in the background."""
        self.deps.start_background(self.maintenance_tick)

    def maintenance_tick(self) -> None:
        """One round of background upkeep (also callable directly, e.g. by tests).

        Embedded, it also consolidates idle sessions and decays; in the stack (Redis set) the
        Celery beat and workers do that.
        """
        self.deps.sync_indexes()
        if self.deps.indexes.snapshot_due():
            self.deps.yield_to_requests()  # copying a large index would stall searches
            self.deps.indexes.save_if_dirty()
        jobs.flush_access(self.deps)
        self.idempotency.purge_expired(now_s=time.monotonic())
        working.restore_short_term(self.deps)  # after Redis lost writes or restarted empty
        if not self.settings.redis_url:
            jobs.maintenance(self.deps, self._upkeep)

    def close(self) -> None:
        self.deps.close()

    def database_problem(self) -> str | None:
        """None when the database answers; else what is wrong (readiness probes)."""
        return ping(self.deps.engine)

    # -- tenants and keys ------------------------------------------------------------------

    def authenticate(self, raw_key: str | None) -> Principal:
        """The principal of an API key; raises ``AuthError`` for a missing or unknown key."""
        return self._auth.authenticate(raw_key)

    def cached_principal(self, raw_key: str | None) -> Principal | None:
        """The principal of a recently authenticated key, without touching the database."""
        return self._auth.cached(raw_key)

    def create_tenant(self, name: str, tenant_id: str | None = None) -> TenantPublic:
        return tenants.create_tenant(self.deps, name, tenant_id)

    def list_tenants(self) -> list[TenantPublic]:
        return tenants.list_tenants(self.deps)

    def create_api_key(self, tenant_id: str, name: str = "") -> ApiKeyCreated:
        return tenants.create_api_key(self.deps, tenant_id, name)

    def list_api_keys(self, tenant_id: str) -> list[ApiKeyPublic]:
        return tenants.list_api_keys(self.deps, tenant_id)

    def revoke_api_key(self, tenant_id: str, key_id: str, grace_seconds: float = 0) -> ApiKeyPublic:
        """Revoke a key now or after ``grace_seconds`` (see ``Authenticator.revoke``)."""
        return self._auth.revoke(tenant_id, key_id, grace_seconds)

    def rotate_api_key(
        self, tenant_id: str, key_id: str, grace_seconds: float = 0, name: str | None = None
    ) -> tuple[ApiKeyCreated, ApiKeyPublic]:
        """A new key; the old one is revoked after ``grace_seconds``."""
        return self._auth.rotate(tenant_id, key_id, grace_seconds, name)

    def ensure_local_key(self) -> tuple[str, bool]:
        return tenants.ensure_local_key(self.deps, self.settings.data_dir)

    # -- long-term memories ----------------------------------------------------------------

    @_serving
    def add(
        self,
        tenant_id: str,
        items: list[MemoryCreate],
        *,
        actor: str,
        single: bool = False,
        idempotency: IdempotentRequest | None = None,
    ) -> list[MemoryWriteResult]:
        return memories.add_memories(
            self.deps, tenant_id, items, actor=actor, single=single, idempotency=idempotency
        )

    def get(self, tenant_id: str, memory_id: str) -> MemoryPublic:
        return memories.get_memory(self.deps, tenant_id, memory_id)

    def list(
        self,
        tenant_id: str,
        filters: MemoryFilter,
        *,
        limit: int = 100,
        cursor: str | None = None,
        order: str = "desc",
    ) -> Page[MemoryPublic]:
        return memories.list_memories(
            self.deps, tenant_id, filters, limit=limit, cursor=cursor, order=order
        )

    def update(
        self, tenant_id: str, memory_id: str, changes: dict[str, Any], *, actor: str
    ) -> MemoryPublic:
        return memories.update_memory(self.deps, tenant_id, memory_id, changes, actor=actor)

    def delete(self, tenant_id: str, memory_id: str, *, actor: str) -> None:
        memories.delete_memory(self.deps, tenant_id, memory_id, actor=actor)

    def delete_all(self, tenant_id: str, filters: MemoryFilter, *, actor: str) -> int:
        return memories.delete_memories(self.deps, tenant_id, filters, actor=actor)

    def history(self, tenant_id: str, memory_id: str) -> list[MemoryHistoryEntry]:
        return memories.memory_history(self.deps, tenant_id, memory_id)

    @_serving
    def search(self, tenant_id: str, request: SearchRequest) -> SearchResponse:
        found = search.search_memories(self.deps, tenant_id, request)
        # Retrieval reinforces a memory against decay (written to SQL in batches).
        self.deps.record_access([r.memory.id for r in found.data if r.tier == "long_term"])
        return found

    def restore(self, tenant_id: str, memory_id: str, *, actor: str) -> MemoryPublic:
        """Bring an archived memory back into default search."""
        return memories.restore_memory(self.deps, tenant_id, memory_id, actor=actor)

    # -- events, sessions, context ---------------------------------------------------------

    @_serving
    def add_events(
        self, tenant_id: str, batch: EventBatch, *, idempotency: IdempotentRequest | None = None
    ) -> list[EventPublic]:
        """Commit events, feed working memory, and promote what overflows its budget."""
        written = events.ingest_events(self.deps, tenant_id, batch, idempotency=idempotency)
        for session_id in dict.fromkeys(e.session_id for e in written):
            try:
                promoted = working.promote_due(self.deps, tenant_id, session_id)
            except redis.RedisError as exc:
                # The events are durable; the backlog is consolidated once Redis is back.
                log.warning("working memory unavailable; overflow check skipped: %s", exc)
                continue
            if promoted:
                jobs.trigger_session(self.deps, tenant_id, session_id, "overflow")
        return written

    def list_events(
        self, tenant_id: str, filters: EventFilter, *, limit: int = 100, cursor: str | None = None
    ) -> Page[EventPublic]:
        return events.list_events(self.deps, tenant_id, filters, limit=limit, cursor=cursor)

    def get_session(self, tenant_id: str, session_id: str) -> SessionPublic:
        return sessions.get_session(self.deps, tenant_id, session_id)

    def list_sessions(
        self,
        tenant_id: str,
        *,
        user_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[SessionPublic]:
        return sessions.list_sessions(
            self.deps, tenant_id, user_id=user_id, limit=limit, cursor=cursor
        )

    def close_session(self, tenant_id: str, session_id: str) -> SessionPublic:
        """Promote the session's working memory now and consolidate it: at once when
        embedded, on a worker in the stack."""
        sessions.close_session(self.deps, tenant_id, session_id)
        jobs.consolidate_closed(self.deps, tenant_id, session_id)
        return sessions.get_session(self.deps, tenant_id, session_id)

    @_serving
    def context(self, tenant_id: str, request: ContextRequest) -> ContextResponse:
        return context.assemble_context(self.deps, tenant_id, request)

    # -- consolidation and the entity graph ----------------------------------------------------

    def consolidate(self, tenant_id: str, request: ConsolidateRequest) -> JobPublic:
        """Start consolidating a scope in the background; returns the job (see get_job)."""
        return jobs.request_consolidation(self.deps, tenant_id, request)

    def get_job(self, tenant_id: str, job_id: str) -> JobPublic:
        return jobs.get_job(self.deps, tenant_id, job_id)

    def train_cartridge(self, tenant_id: str, request: CartridgeTrainRequest) -> JobPublic:
        """Train a KV cartridge on a corpus in the background; the job stores it (see get_job)."""
        from memsvc.service import cartridge_train  # torch and transformers load on first use

        return cartridge_train.request_training(self.deps, tenant_id, request)

    def list_entities(
        self,
        tenant_id: str,
        *,
        user_id: str | None = None,
        type_: str | None = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[EntityPublic]:
        return graph.list_entities(
            self.deps,
            tenant_id,
            user_id=user_id,
            type_=type_,
            name=name,
            limit=limit,
            cursor=cursor,
        )

    def get_entity(self, tenant_id: str, entity_id: str) -> EntityDetail:
        return graph.get_entity(self.deps, tenant_id, entity_id)

    def list_relations(
        self,
        tenant_id: str,
        *,
        user_id: str | None = None,
        entity_id: str | None = None,
        type_: str | None = None,
        as_of: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[RelationPublic]:
        return graph.list_relations(
            self.deps,
            tenant_id,
            user_id=user_id,
            entity_id=entity_id,
            type_=type_,
            as_of=as_of,
            limit=limit,
            cursor=cursor,
        )

    # -- maintenance -----------------------------------------------------------------------

    def rebuild_index(self) -> int:
        """Rebuild faiss and BM25 from SQL; returns how many memories are indexed."""
        return self.deps.indexes.rebuild()

    # -- KV memory: cartridges and episodic caches (see memsvc.service.kv) -----------------

    def save_cartridge(
        self,
        tenant_id: str,
        container: KVContainer,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> KVPublic:
        """Store a KV cartridge built in-process (e.g. by training)."""
        from memsvc.service import kv  # torch: imported on first use

        return kv.save_cartridge(self.deps, tenant_id, container, name=name, metadata=metadata)

    def save_session_kv(
        self,
        tenant_id: str,
        session_id: str,
        container: KVContainer,
        *,
        episode_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> KVPublic:
        """Store (replace) a session's or episode's KV cache."""
        from memsvc.service import kv  # torch: imported on first use

        return kv.save_session_kv(
            self.deps, tenant_id, session_id, container, episode_id=episode_id, metadata=metadata
        )

    def store_kv_file(
        self,
        tenant_id: str,
        path: Path,
        *,
        kind: KVKind,
        name: str | None = None,
        session_id: str | None = None,
        episode_id: str | None = None,
        spec: QuantSpec | LayerwiseSpec | None = None,
        metadata: dict[str, Any] | None = None,
        digest: str | None = None,
    ) -> KVPublic:
        """Verify and store an uploaded container file (consumed: moved in or removed)."""
        from memsvc.service import kv  # torch: imported on first use

        return kv.store_file(
            self.deps,
            tenant_id,
            path,
            kind=kind,
            name=name,
            session_id=session_id,
            episode_id=episode_id,
            spec=spec,
            metadata=metadata,
            digest=digest,
        )

    def get_kv(self, tenant_id: str, kv_id: str, *, kind: KVKind | None = None) -> KVPublic:
        from memsvc.service import kv  # torch: imported on first use

        return kv.get_kv(self.deps, tenant_id, kv_id, kind=kind)

    def list_kv(
        self,
        tenant_id: str,
        *,
        kind: KVKind | None = None,
        model_id: str | None = None,
        name: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[KVPublic]:
        from memsvc.service import kv  # torch: imported on first use

        return kv.list_kv(
            self.deps,
            tenant_id,
            kind=kind,
            model_id=model_id,
            name=name,
            session_id=session_id,
            limit=limit,
            cursor=cursor,
        )

    def delete_kv(self, tenant_id: str, kv_id: str, *, kind: KVKind | None = None) -> None:
        from memsvc.service import kv  # torch: imported on first use

        kv.delete_kv(self.deps, tenant_id, kv_id, kind=kind)

    def open_kv_content(
        self, tenant_id: str, kv_id: str, *, kind: KVKind | None = None
    ) -> KVContent:
        """The stored container file, to stream (counts as a use)."""
        from memsvc.service import kv  # torch: imported on first use

        return kv.open_content(self.deps, tenant_id, kv_id, kind=kind)

    def load_kv(self, tenant_id: str, kv_id: str, *, kind: KVKind | None = None) -> KVContainer:
        """The stored container, verified (counts as a use)."""
        from memsvc.service import kv  # torch: imported on first use

        return kv.load_container(self.deps, tenant_id, kv_id, kind=kind)

    def lookup_kv(self, tenant_id: str, request: KVLookupRequest) -> KVLookupResult:
        """The stored cache covering the longest prefix of the given tokens."""
        from memsvc.service import kv_lookup  # torch: imported on first use

        return kv_lookup.lookup(self.deps, tenant_id, request)

    def compose_cartridges(self, tenant_id: str, request: CartridgeCompose) -> KVPublic:
        from memsvc.service import kv_lifecycle  # torch: imported on first use

        return kv_lifecycle.compose_cartridges(self.deps, tenant_id, request)

    def consolidate_kv(
        self, *, tenant_id: str | None = None, now: datetime | None = None
    ) -> dict[str, int]:
        """Re-encode old episodic caches at fewer bits; drop the least used past the budget."""
        from memsvc.service import kv_lifecycle  # torch: imported on first use

        return kv_lifecycle.consolidate_kv(self.deps, tenant_id=tenant_id, now=now)

    def set_kv_limits(
        self,
        tenant_id: str,
        *,
        quota_bytes: int | None = None,
        retention_bytes: int | None = None,
    ) -> None:
        """Per-tenant KV quota and episodic retention budget (None: the settings' default)."""
        from memsvc.service import kv  # torch: imported on first use

        kv.set_limits(
            self.deps, tenant_id, quota_bytes=quota_bytes, retention_bytes=retention_bytes
        )
