"""Memories, recall (search and context), events and sessions."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import redis

from memsvc.schemas import (
    ContextRequest,
    ContextResponse,
    EventBatch,
    EventFilter,
    EventPublic,
    EventsAdded,
    MemoryCreate,
    MemoryFilter,
    MemoryHistoryEntry,
    MemoryPublic,
    MemoryWriteResult,
    Page,
    SearchRequest,
    SearchResponse,
    SessionPublic,
)
from memsvc.schemas.scopes import ScopeSummary
from memsvc.service import context, events, jobs, memories, scopes, search, sessions, working
from memsvc.service.activity import ForegroundActivity
from memsvc.service.deps import ServiceDeps
from memsvc.service.idempotency import IdempotentRequest
from memsvc.service.jobs import JobDispatcher

__all__ = ["Events", "Memories", "Recall", "Sessions"]

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Serving(Protocol):
    activity: ForegroundActivity


_S = TypeVar("_S", bound=_Serving)


def _serving(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """Mark a call as foreground work: embedded consolidation waits while it runs.

    Marked: the hot paths that embed or search (``add``, ``add_events``, ``search``,
    ``context``). Cheap reads such as ``get``/``list`` are not, so a client polling them does
    not hold consolidation back; nor are rarer writes (``update``, KV and cartridge calls).
    """

    @functools.wraps(method)
    def wrapper(self: _S, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.activity.request():
            return method(self, *args, **kwargs)

    return wrapper


class Memories:
    """Long-term memories: add, read, change, delete, their history."""

    def __init__(self, deps: ServiceDeps, activity: ForegroundActivity) -> None:
        self.deps, self.activity = deps, activity

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

    def restore(self, tenant_id: str, memory_id: str, *, actor: str) -> MemoryPublic:
        """Bring an archived memory back into default search."""
        return memories.restore_memory(self.deps, tenant_id, memory_id, actor=actor)

    def scopes(self, tenant_id: str, *, limit: int = 200) -> ScopeSummary:
        """The users, agents and sessions holding memories, with their counts."""
        return scopes.scope_summary(self.deps, tenant_id, limit=limit)


class Recall:
    """Search and prompt context over long- and short-term memory."""

    def __init__(self, deps: ServiceDeps, activity: ForegroundActivity) -> None:
        self.deps, self.activity = deps, activity

    @_serving
    def search(self, tenant_id: str, request: SearchRequest) -> SearchResponse:
        found = search.search_memories(self.deps, tenant_id, request)
        # Retrieval reinforces a memory against decay (written to SQL in batches).
        self.deps.access.record([r.memory.id for r in found.data if r.tier == "long_term"])
        return found

    @_serving
    def context(self, tenant_id: str, request: ContextRequest) -> ContextResponse:
        return context.assemble_context(self.deps, tenant_id, request)


class Events:
    """The event log: chat turns in (durable first), sensory and working memory after."""

    def __init__(
        self, deps: ServiceDeps, activity: ForegroundActivity, dispatcher: JobDispatcher
    ) -> None:
        self.deps, self.activity, self.dispatcher = deps, activity, dispatcher

    def add(
        self, tenant_id: str, batch: EventBatch, *, idempotency: IdempotentRequest | None = None
    ) -> list[EventPublic]:
        """Commit events, feed working memory, and promote what overflows its budget."""
        return self.write(tenant_id, batch, idempotency=idempotency).data

    @_serving
    def write(
        self,
        tenant_id: str,
        batch: EventBatch,
        *,
        actor: str = "system:events",
        idempotency: IdempotentRequest | None = None,
    ) -> EventsAdded:
        """``add``'s whole reply: the events and, with ``batch.infer``, their facts."""
        reply = events.ingest_events(
            self.deps, tenant_id, batch, idempotency=idempotency, actor=actor
        )
        written = reply.data
        for session_id in dict.fromkeys(e.session_id for e in written):
            try:
                promoted = working.promote_due(self.deps, tenant_id, session_id)
            except redis.RedisError as exc:
                # The events are durable; the backlog is consolidated once Redis is back.
                log.warning("working memory unavailable; overflow check skipped: %s", exc)
                continue
            if promoted:
                jobs.trigger_session(self.deps, self.dispatcher, tenant_id, session_id, "overflow")
        return reply

    def list(
        self, tenant_id: str, filters: EventFilter, *, limit: int = 100, cursor: str | None = None
    ) -> Page[EventPublic]:
        return events.list_events(self.deps, tenant_id, filters, limit=limit, cursor=cursor)


class Sessions:
    """Conversations: their state, and closing one (consolidated now)."""

    def __init__(self, deps: ServiceDeps, dispatcher: JobDispatcher) -> None:
        self.deps, self.dispatcher = deps, dispatcher

    def get(self, tenant_id: str, session_id: str) -> SessionPublic:
        return sessions.get_session(self.deps, tenant_id, session_id)

    def list(
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

    def close(self, tenant_id: str, session_id: str) -> SessionPublic:
        """Promote the session's working memory now and consolidate it: at once when
        embedded, on a worker in the stack."""
        sessions.close_session(self.deps, tenant_id, session_id)
        jobs.consolidate_closed(self.deps, self.dispatcher, tenant_id, session_id)
        return sessions.get_session(self.deps, tenant_id, session_id)
