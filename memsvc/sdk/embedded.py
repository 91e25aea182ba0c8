"""``Memory``: the whole service in-process, no server. Same surface as the REST clients.

Data lives under ``data_dir`` (SQLite + faiss snapshots) unless ``MEMSVC_DATABASE_URL`` points
elsewhere. Everything is stored for the ``local`` tenant unless another is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import ValidationError

from memsvc.embeddings import Embedder
from memsvc.errors import MemsvcError
from memsvc.schemas import (
    ConsolidateRequest,
    ContextResponse,
    EntityDetail,
    EntityPublic,
    EventCreate,
    EventPublic,
    JobPublic,
    ListEnvelope,
    MemoryCreate,
    MemoryFilter,
    MemoryHistoryEntry,
    MemoryPublic,
    MemoryWriteResult,
    Page,
    RelationPublic,
    SearchResult,
    SessionPublic,
)
from memsvc.sdk._base import (
    DEFAULT_SESSION,
    UNSET,
    ApiCall,
    MemoryInput,
    Unset,
    build_add_items,
    build_context,
    build_event_batch,
    build_filter,
    build_search,
    build_update,
    invalid_from_validation,
    is_messages,
)
from memsvc.sdk.kv_embedded import EmbeddedCartridges, EmbeddedKV
from memsvc.service import LOCAL_TENANT_ID, IdempotentRequest, MemoryService
from memsvc.service.idempotency import check_key
from memsvc.settings import Settings
from stores.events import EventQuery

__all__ = ["Memory"]


class Memory:
    """An embedded memory service for one tenant."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        service: MemoryService | None = None,
        tenant_id: str = LOCAL_TENANT_ID,
        actor: str = "embedded",
    ) -> None:
        if settings is None:
            settings = Settings() if data_dir is None else Settings(data_dir=Path(data_dir))
        elif data_dir is not None:
            settings = settings.model_copy(update={"data_dir": Path(data_dir)})
        self._owns_service = service is None
        self.service = service or MemoryService.from_settings(settings, embedder=embedder)
        self.tenant_id = tenant_id
        self.actor = actor
        self._closed = False
        self.kv = EmbeddedKV(self)  # episodic KV caches
        self.cartridges = EmbeddedCartridges(self, self.kv)  # trained KV cartridges
        if self._owns_service and tenant_id == LOCAL_TENANT_ID:
            self.service.ensure_local_key()  # creates the local tenant on first use

    def _svc(self) -> MemoryService:
        if self._closed:
            raise MemsvcError("this Memory is closed; create a new one")
        return self.service

    def _keyed(
        self, path: str, body: Any, key: str | None, reply_type: Any
    ) -> tuple[IdempotentRequest | None, Any]:
        """A write with the caller's idempotency key: the request to store its reply with, and
        the stored reply's data when the key was answered before (else ``None``)."""
        if key is None:
            return None, None
        service = self._svc()
        check_key(key, service.settings.idempotency.max_key_length)
        fingerprint = ApiCall("POST", path, json=body, idempotency_key=key).fingerprint()
        request = IdempotentRequest(self.tenant_id, key, fingerprint)
        seen = service.idempotency.lookup(self.tenant_id, key)
        if seen is None:
            return request, None
        reply = seen.replay(key, fingerprint)  # or the mismatch / in-progress error
        return request, reply_type.model_validate_json(reply.body).data

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._owns_service:
                self.service.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the memory surface (same names and signatures as the REST clients) ----------------

    def add(
        self,
        memories: MemoryInput | Sequence[MemoryInput] | Sequence[Mapping[str, Any]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        kind: str | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> list[MemoryWriteResult] | list[EventPublic]:
        """Store one memory or a batch (all or nothing); duplicates come back as NOOP.

        Chat messages (``[{"role": ..., "content": ...}]``) go in as events instead (session
        ``default`` unless one is given) and come back as events. ``idempotency_key``: the
        same key again returns the first reply and writes nothing (kept with the write).
        """
        if is_messages(memories):
            return self.add_events(
                memories,
                user_id=user_id,
                agent_id=agent_id,
                session_id=session_id or DEFAULT_SESSION,
                idempotency_key=idempotency_key,
            )
        items = build_add_items(
            memories,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            metadata=metadata,
            kind=kind,
            occurred_at=occurred_at,
        )
        single = isinstance(memories, (str, Mapping, MemoryCreate))
        body = [item.model_dump(mode="json") for item in items]
        envelope = ListEnvelope[MemoryWriteResult]
        request, replayed = self._keyed("/v1/memories", body, idempotency_key, envelope)
        if replayed is not None:
            return replayed
        return self._svc().add(
            self.tenant_id, items, actor=self.actor, single=single, idempotency=request
        )

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        filters: MemoryFilter | Mapping[str, Any] | None = None,
        top_k: int = 10,
        threshold: float | None = None,
        fusion: str | None = None,
    ) -> list[SearchResult]:
        """The ``top_k`` most relevant memories, best first."""
        scope = build_filter(filters, user_id=user_id, agent_id=agent_id, session_id=session_id)
        request = build_search(query, scope, top_k=top_k, threshold=threshold, fusion=fusion)
        return self._svc().search(self.tenant_id, request).data

    def get(self, memory_id: str) -> MemoryPublic:
        return self._svc().get(self.tenant_id, memory_id)

    def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        filters: MemoryFilter | Mapping[str, Any] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        order: str = "desc",
    ) -> Page[MemoryPublic]:
        """One page of memories; pass ``page.next_cursor`` as ``cursor`` for the next."""
        scope = build_filter(filters, user_id=user_id, agent_id=agent_id, session_id=session_id)
        return self._svc().list(self.tenant_id, scope, limit=limit, cursor=cursor, order=order)

    def update(
        self,
        memory_id: str,
        *,
        text: str | Unset = UNSET,
        kind: str | Unset = UNSET,
        metadata: Mapping[str, Any] | Unset | None = UNSET,
        importance: float | Unset = UNSET,
        occurred_at: datetime | Unset = UNSET,
        valid_from: datetime | Unset | None = UNSET,
        valid_to: datetime | Unset | None = UNSET,
    ) -> MemoryPublic:
        """Change only the fields given; ``metadata=None`` clears it."""
        changes = build_update(
            text=text,
            kind=kind,
            metadata=metadata,
            importance=importance,
            occurred_at=occurred_at,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        return self._svc().update(self.tenant_id, memory_id, changes, actor=self.actor)

    def delete(self, memory_id: str) -> None:
        self._svc().delete(self.tenant_id, memory_id, actor=self.actor)

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Delete every memory of a scope; returns how many."""
        scope = build_filter(None, user_id=user_id, agent_id=agent_id, session_id=session_id)
        return self._svc().delete_all(self.tenant_id, scope, actor=self.actor)

    def history(self, memory_id: str) -> list[MemoryHistoryEntry]:
        return self._svc().history(self.tenant_id, memory_id)

    # -- events, sessions, context -----------------------------------------------------------

    def add_events(
        self,
        events: Sequence[Mapping[str, Any] | EventCreate],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> list[EventPublic]:
        """Append chat events (durable when this returns), each with its gate decision.
        ``idempotency_key`` as in ``add``."""
        batch = build_event_batch(events, user_id=user_id, agent_id=agent_id, session_id=session_id)
        body = batch.model_dump(mode="json")
        envelope = ListEnvelope[EventPublic]
        request, replayed = self._keyed("/v1/events", body, idempotency_key, envelope)
        if replayed is not None:
            return replayed
        return self._svc().add_events(self.tenant_id, batch, idempotency=request)

    def get_events(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[EventPublic]:
        """One page of events in write order; pass ``next_cursor`` back for more."""
        query = EventQuery(
            tenant_id=self.tenant_id, user_id=user_id, agent_id=agent_id, session_id=session_id
        )
        return self._svc().list_events(self.tenant_id, query, limit=limit, cursor=cursor)

    def get_context(
        self,
        query: str | None = None,
        *,
        messages: Sequence[Mapping[str, Any]] | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        token_budget: int = 1024,
        top_k: int = 20,
    ) -> ContextResponse:
        """A prompt-ready block of memories for the query (or the latest messages)."""
        request = build_context(
            query=query,
            messages=messages,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            token_budget=token_budget,
            top_k=top_k,
        )
        return self._svc().context(self.tenant_id, request)

    def get_session(self, session_id: str) -> SessionPublic:
        return self._svc().get_session(self.tenant_id, session_id)

    def list_sessions(
        self, *, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[SessionPublic]:
        return self._svc().list_sessions(
            self.tenant_id, user_id=user_id, limit=limit, cursor=cursor
        )

    def close_session(self, session_id: str) -> SessionPublic:
        """Consolidate the session's working memory now."""
        return self._svc().close_session(self.tenant_id, session_id)

    # -- consolidation, jobs, the entity graph ---------------------------------------------

    def consolidate(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> JobPublic:
        """Consolidate a scope in the background now; returns the job (poll ``get_job``)."""
        try:
            request = ConsolidateRequest(user_id=user_id, agent_id=agent_id, session_id=session_id)
        except ValidationError as exc:
            raise invalid_from_validation(exc) from exc
        return self._svc().consolidate(self.tenant_id, request)

    def get_job(self, job_id: str) -> JobPublic:
        """State, step, counts and errors of a consolidation job."""
        return self._svc().get_job(self.tenant_id, job_id)

    def list_entities(
        self,
        *,
        user_id: str | None = None,
        type: str | None = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[EntityPublic]:
        """Entities of the graph (people, places, organisations, things, activities)."""
        return self._svc().list_entities(
            self.tenant_id, user_id=user_id, type_=type, name=name, limit=limit, cursor=cursor
        )

    def get_entity(self, entity_id: str) -> EntityDetail:
        """An entity with its neighbours, relations and the memories that mention it."""
        return self._svc().get_entity(self.tenant_id, entity_id)

    def list_relations(
        self,
        *,
        user_id: str | None = None,
        entity_id: str | None = None,
        type: str | None = None,
        as_of: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[RelationPublic]:
        """Relations between entities; ``as_of`` keeps those valid at that time."""
        return self._svc().list_relations(
            self.tenant_id,
            user_id=user_id,
            entity_id=entity_id,
            type_=type,
            as_of=as_of,
            limit=limit,
            cursor=cursor,
        )

    def restore(self, memory_id: str) -> MemoryPublic:
        """Bring an archived (decayed) memory back into default search."""
        return self._svc().restore(self.tenant_id, memory_id, actor=self.actor)
