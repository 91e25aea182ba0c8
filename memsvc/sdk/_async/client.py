"""The memory surface of the SDK, written once.

``AsyncMemoryClient`` in ``memsvc/sdk/_async/client.py`` is the hand-written client;
``MemoryClient`` in ``memsvc/sdk/_sync/client.py`` (and through it the embedded ``Memory``) is
generated from it by ``scripts/unasync_sdk.py``, and a test fails when it is stale. Each method
builds the operation's models and sends one :class:`~memsvc.operations.Call` through the
client's transport: HTTP to a server, or in-process to a service (:mod:`memsvc.sdk.in_process`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from memsvc.errors import InvalidRequestError, MemsvcError
from memsvc.operations import Call, by_name
from memsvc.schemas import (
    ConsolidateRequest,
    ContextResponse,
    EntityDetail,
    EntityPublic,
    EventCreate,
    EventPublic,
    EventsAdded,
    JobPublic,
    MemoryBatch,
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
from memsvc.schemas.params import (
    EntityListParams,
    EventListParams,
    MemoryListParams,
    MemoryScopeParams,
    RelationListParams,
    SessionListParams,
)
from memsvc.sdk._async.http import AsyncHTTPTransport
from memsvc.sdk._async.kv import AsyncCartridgeClient, AsyncKVClient
from memsvc.sdk._async.project import AsyncProjectMixin
from memsvc.sdk._async.scopes import AsyncScopesMixin
from memsvc.sdk._base import (
    DEFAULT_SESSION,
    UNSET,
    MemoryInput,
    RetryPolicy,
    Unset,
    build,
    build_add_items,
    build_context,
    build_event_batch,
    build_filter,
    build_search,
    build_update,
    is_messages,
)
from memsvc.sdk.transport import AsyncTransport

__all__ = ["AsyncMemoryClient"]

DEFAULT_URL = "http://127.0.0.1:8765"


class _State(Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class AsyncMemoryClient(AsyncScopesMixin, AsyncProjectMixin):
    """A client for a memsvc server (coroutines in ``AsyncMemoryClient``).

    Takes an API key (or ``MEMSVC_API_KEY``) and a base URL (or ``MEMSVC_URL``); or a ready
    ``httpx.AsyncClient`` (``http_client``, e.g. bound to the app in-process); or a
    ``transport``: an httpx transport, or a memsvc one (:mod:`memsvc.sdk.transport`).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | AsyncTransport | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("MEMSVC_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("MEMSVC_API_KEY")
        self.timeout = timeout
        self._state = _State.UNOPENED
        if isinstance(transport, AsyncTransport):
            self._transport: AsyncTransport = transport
        else:
            http = http_client or httpx.AsyncClient(
                base_url=self.base_url, timeout=timeout, transport=transport
            )
            retry = RetryPolicy(max_retries=max_retries, backoff_seconds=retry_backoff)
            self._transport = AsyncHTTPTransport(http, self._headers(), retry)
        self.kv = AsyncKVClient(self)  # episodic KV caches
        self.cartridges = AsyncCartridgeClient(self, self.kv)  # trained KV cartridges

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "memsvc-python"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise MemsvcError("the client is closed; create a new one")
        self._state = _State.OPENED

    async def request(
        self,
        operation: str,
        *,
        path: Mapping[str, str] | None = None,
        query: Any = None,
        body: Any = None,
        upload: Path | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Call one operation of :mod:`memsvc.operations` by id (``"memories-get"``) with its
        models; returns its response model. The sub-resources and adapters use this.

        A write is sent with ``idempotency_key`` (over HTTP a fresh one when none is given):
        retried with the same key, it is done once.
        """
        self._check_open()
        op = by_name(operation)
        call = Call(op, path=dict(path or {}), query=query, body=body, upload=upload)
        call.idempotency_key = idempotency_key
        return await self._transport.send(call)

    def download(
        self, operation: str, *, path: Mapping[str, str]
    ) -> AbstractAsyncContextManager[Path]:
        """A download operation's content as a local file, valid inside ``async with``."""
        self._check_open()
        return self._transport.download(Call(by_name(operation), path=dict(path)))

    async def aclose(self) -> None:
        if self._state is not _State.CLOSED:
            self._state = _State.CLOSED
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- long-term memories (the names follow mem0's) --------------------------------------

    async def add(
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
        infer: bool = False,
    ) -> list[MemoryWriteResult] | list[EventPublic]:
        """Store one memory or a batch (all or nothing); duplicates come back as NOOP.

        Chat messages (``[{"role": ..., "content": ...}]``) go in as events instead (session
        ``default`` unless one is given) and come back as events; with ``infer=True`` the
        facts extracted from them come back instead, each with its ADD/UPDATE/NOOP ``event``.
        ``idempotency_key``: the caller's key for this write; sent again with it (even by
        another process), it is done once and answers the first reply.
        """
        if is_messages(memories):
            body = build_event_batch(
                memories,  # type: ignore[arg-type]
                user_id=user_id,
                agent_id=agent_id,
                session_id=session_id or DEFAULT_SESSION,
                infer=infer,
            )
            reply = await self.request(
                "events-add_events", body=body, idempotency_key=idempotency_key
            )
            return reply.facts if infer else reply.data
        if infer:
            raise InvalidRequestError(
                "infer=True extracts facts from chat messages (role and content); "
                "memories given as text are stored as they are",
                field="infer",
            )
        items = build_add_items(
            memories,  # type: ignore[arg-type]
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            metadata=metadata,
            kind=kind,
            occurred_at=occurred_at,
        )
        # One memory goes as itself, so errors name its fields (not items[0]'s).
        single = isinstance(memories, (str, Mapping, MemoryCreate))
        body = items[0] if single else build(MemoryBatch, items=items)
        written = await self.request("memories-add", body=body, idempotency_key=idempotency_key)
        return written.data

    async def search(
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
        body = build_search(query, scope, top_k=top_k, threshold=threshold, fusion=fusion)
        return (await self.request("search-search", body=body)).data

    async def get(self, memory_id: str) -> MemoryPublic:
        return await self.request("memories-get", path={"memory_id": memory_id})

    async def get_all(
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
        query = build(MemoryListParams.of, scope, limit=limit, cursor=cursor, order=order)
        return await self.request("memories-list_memories", query=query)

    async def update(
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
        body = build_update(
            text=text,
            kind=kind,
            metadata=metadata,
            importance=importance,
            occurred_at=occurred_at,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        return await self.request("memories-update", path={"memory_id": memory_id}, body=body)

    async def delete(self, memory_id: str) -> None:
        await self.request("memories-delete", path={"memory_id": memory_id})

    async def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Delete every memory of a scope; returns how many."""
        scope = build_filter(None, user_id=user_id, agent_id=agent_id, session_id=session_id)
        query = build(MemoryScopeParams.of, scope)
        return (await self.request("memories-delete_by_scope", query=query)).deleted

    async def history(self, memory_id: str) -> list[MemoryHistoryEntry]:
        """Every mutation of the memory, oldest first."""
        return (await self.request("memories-history", path={"memory_id": memory_id})).data

    async def restore(self, memory_id: str) -> MemoryPublic:
        """Bring an archived (decayed) memory back into default search."""
        return await self.request("memories-restore", path={"memory_id": memory_id})

    # -- events, sessions, context ----------------------------------------------------------

    async def add_events(
        self,
        events: Sequence[Mapping[str, Any] | EventCreate],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
        infer: bool = False,
    ) -> list[EventPublic] | EventsAdded:
        """Append chat events (durable when this returns), each with its gate decision;
        ``idempotency_key`` as in ``add``. With ``infer=True``, their facts are extracted
        at once and the whole reply comes back: ``data`` (the events) and ``facts``."""
        body = build_event_batch(
            events, user_id=user_id, agent_id=agent_id, session_id=session_id, infer=infer
        )
        written = await self.request(
            "events-add_events", body=body, idempotency_key=idempotency_key
        )
        return written if infer else written.data

    async def get_events(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[EventPublic]:
        """One page of events in write order; pass ``next_cursor`` back for more."""
        query = build(
            EventListParams,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            limit=limit,
            cursor=cursor,
        )
        return await self.request("events-list_events", query=query)

    async def get_context(
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
        body = build_context(
            query=query,
            messages=messages,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            token_budget=token_budget,
            top_k=top_k,
        )
        return await self.request("context-context", body=body)

    async def get_session(self, session_id: str) -> SessionPublic:
        return await self.request("sessions-get_session", path={"session_id": session_id})

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[SessionPublic]:
        query = build(SessionListParams, user_id=user_id, limit=limit, cursor=cursor)
        return await self.request("sessions-list_sessions", query=query)

    async def close_session(self, session_id: str) -> SessionPublic:
        """Consolidate the session's working memory now."""
        return await self.request("sessions-close_session", path={"session_id": session_id})

    # -- consolidation, jobs, the entity graph ----------------------------------------------

    async def consolidate(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> JobPublic:
        """Consolidate a scope in the background now; returns the job (poll ``get_job``)."""
        body = build(ConsolidateRequest, user_id=user_id, agent_id=agent_id, session_id=session_id)
        return await self.request("jobs-consolidate", body=body)

    async def get_job(self, job_id: str) -> JobPublic:
        """State, step, counts and errors of a consolidation job."""
        return await self.request("jobs-get_job", path={"job_id": job_id})

    async def list_entities(
        self,
        *,
        user_id: str | None = None,
        type: str | None = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[EntityPublic]:
        """Entities of the graph (people, places, organisations, things, activities)."""
        query = build(
            EntityListParams, user_id=user_id, type=type, name=name, limit=limit, cursor=cursor
        )
        return await self.request("graph-list_entities", query=query)

    async def get_entity(self, entity_id: str) -> EntityDetail:
        """An entity with its neighbours, relations and the memories that mention it."""
        return await self.request("graph-get_entity", path={"entity_id": entity_id})

    async def list_relations(
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
        query = build(
            RelationListParams,
            user_id=user_id,
            entity_id=entity_id,
            type=type,
            as_of=as_of,
            limit=limit,
            cursor=cursor,
        )
        return await self.request("graph-list_relations", query=query)
