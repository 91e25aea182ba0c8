"""REST clients: ``MemoryClient`` (sync) and ``AsyncMemoryClient``, twins over httpx.

Both take an API key (or ``MEMSVC_API_KEY``) and a base URL (or ``MEMSVC_URL``), or a ready
``httpx.Client`` / ``httpx.AsyncClient`` (tests pass one bound to the app in-process).

Every write carries an ``Idempotency-Key`` (one per call), so a call is sent again safely
when its reply was lost: transport errors, 429, 503 and a key still in progress are retried
``max_retries`` times with backoff (``memsvc.sdk._base.RetryPolicy``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from types import TracebackType
from typing import Any, Self

import httpx

from memsvc.errors import MemsvcError, ServerError, TransportError
from memsvc.schemas import (
    ContextResponse,
    EntityDetail,
    EntityPublic,
    EventCreate,
    EventPublic,
    JobPublic,
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
    UNSET,
    ApiCall,
    MemoryInput,
    RetryPolicy,
    Unset,
    error_from_response,
)
from memsvc.sdk.calls import EventCalls, JobCalls, MemoryCalls
from memsvc.sdk.kv import AsyncCartridgeClient, AsyncKVClient, CartridgeClient, KVClient

__all__ = ["AsyncMemoryClient", "MemoryClient"]

DEFAULT_URL = "http://127.0.0.1:8765"


class _State(Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class _BaseMemoryClient:
    """Configuration, headers and response handling shared by both clients."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
    ) -> None:
        self.base_url = (base_url or os.environ.get("MEMSVC_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("MEMSVC_API_KEY")
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries, backoff_seconds=retry_backoff)
        self._state = _State.UNOPENED

    def _retry_wait(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds before sending the call again after this answer; ``None``: it is final."""
        payload = None
        if response.status_code == 409:  # only "in progress" is retried: read its code
            try:
                payload = response.json()
            except ValueError:
                payload = None
        retry_after = response.headers.get("retry-after")
        return self.retry.after_response(attempt, response.status_code, retry_after, payload)

    @staticmethod
    def _transport_error(call: ApiCall, exc: httpx.TransportError) -> TransportError:
        return TransportError(f"{call.method} {call.path}: {exc}", request=exc.request)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "memsvc-python"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise MemsvcError("the client is closed; create a new one")
        self._state = _State.OPENED

    @staticmethod
    def _read(call: ApiCall, response: httpx.Response) -> Any:
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if response.is_error:
            raise error_from_response(
                response.status_code, payload, request=response.request, response=response
            )
        if payload is None and call.response_type is not None:
            raise ServerError(
                f"empty or non-JSON answer to {call.method} {call.path}",
                request=response.request,
                response=response,
            )
        return call.parse(payload)


class MemoryClient(_BaseMemoryClient):
    """Synchronous client for a memsvc server."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, max_retries, retry_backoff)
        self._http = http_client or httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport
        )
        self.kv = KVClient(self)  # episodic KV caches
        self.cartridges = CartridgeClient(self, self.kv)  # trained KV cartridges

    def _send(self, call: ApiCall) -> Any:
        self._check_open()
        headers = self._headers() | call.headers()  # the same idempotency key every attempt
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params or None,
                    json=call.json,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                wait = self.retry.after_transport_error(attempt)
                if wait is None:
                    raise self._transport_error(call, exc) from exc
            else:
                wait = self._retry_wait(attempt, response)
                if wait is None:
                    return self._read(call, response)
            attempt += 1
            time.sleep(wait)

    def close(self) -> None:
        if self._state is not _State.CLOSED:
            self._state = _State.CLOSED
            self._http.close()

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the memory surface (same names and signatures as AsyncMemoryClient and Memory) -----

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
        ``default`` unless one is given) and come back as events. ``idempotency_key``: your
        own key for this write (one is made per call otherwise); the same key again returns
        the first reply and writes nothing.
        """
        call = MemoryCalls.add(
            memories,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            metadata=metadata,
            kind=kind,
            occurred_at=occurred_at,
            idempotency_key=idempotency_key,
        )
        return self._send(call).data

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
        call = MemoryCalls.search(
            query,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            filters=filters,
            top_k=top_k,
            threshold=threshold,
            fusion=fusion,
        )
        return self._send(call).data

    def get(self, memory_id: str) -> MemoryPublic:
        return self._send(MemoryCalls.get(memory_id))

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
        call = MemoryCalls.get_all(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            filters=filters,
            limit=limit,
            cursor=cursor,
            order=order,
        )
        return self._send(call)

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
        call = MemoryCalls.update(
            memory_id,
            text=text,
            kind=kind,
            metadata=metadata,
            importance=importance,
            occurred_at=occurred_at,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        return self._send(call)

    def delete(self, memory_id: str) -> None:
        self._send(MemoryCalls.delete(memory_id))

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Delete every memory of a scope; returns how many."""
        call = MemoryCalls.delete_all(user_id=user_id, agent_id=agent_id, session_id=session_id)
        return self._send(call).deleted

    def history(self, memory_id: str) -> list[MemoryHistoryEntry]:
        return self._send(MemoryCalls.history(memory_id)).data

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
        call = EventCalls.add_events(
            events,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            idempotency_key=idempotency_key,
        )
        return self._send(call).data

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
        call = EventCalls.get_events(
            user_id=user_id, agent_id=agent_id, session_id=session_id, limit=limit, cursor=cursor
        )
        return self._send(call)

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
        call = EventCalls.get_context(
            query,
            messages=messages,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            token_budget=token_budget,
            top_k=top_k,
        )
        return self._send(call)

    def get_session(self, session_id: str) -> SessionPublic:
        return self._send(EventCalls.get_session(session_id))

    def list_sessions(
        self, *, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[SessionPublic]:
        return self._send(EventCalls.list_sessions(user_id=user_id, limit=limit, cursor=cursor))

    def close_session(self, session_id: str) -> SessionPublic:
        """Consolidate the session's working memory now."""
        return self._send(EventCalls.close_session(session_id))

    # -- consolidation, jobs, the entity graph ---------------------------------------------

    def consolidate(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> JobPublic:
        """Consolidate a scope in the background now; returns the job (poll ``get_job``)."""
        return self._send(
            JobCalls.consolidate(user_id=user_id, agent_id=agent_id, session_id=session_id)
        )

    def get_job(self, job_id: str) -> JobPublic:
        """State, step, counts and errors of a consolidation job."""
        return self._send(JobCalls.get_job(job_id))

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
        return self._send(
            JobCalls.list_entities(
                user_id=user_id, type=type, name=name, limit=limit, cursor=cursor
            )
        )

    def get_entity(self, entity_id: str) -> EntityDetail:
        """An entity with its neighbours, relations and the memories that mention it."""
        return self._send(JobCalls.get_entity(entity_id))

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
        return self._send(
            JobCalls.list_relations(
                user_id=user_id,
                entity_id=entity_id,
                type=type,
                as_of=as_of,
                limit=limit,
                cursor=cursor,
            )
        )

    def restore(self, memory_id: str) -> MemoryPublic:
        """Bring an archived (decayed) memory back into default search."""
        return self._send(JobCalls.restore(memory_id))


class AsyncMemoryClient(_BaseMemoryClient):
    """Asynchronous client for a memsvc server (same surface as :class:`MemoryClient`)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, max_retries, retry_backoff)
        self._http = http_client or httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport
        )
        self.kv = AsyncKVClient(self)
        self.cartridges = AsyncCartridgeClient(self, self.kv)

    async def _send(self, call: ApiCall) -> Any:
        self._check_open()
        headers = self._headers() | call.headers()  # the same idempotency key every attempt
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params or None,
                    json=call.json,
                    headers=headers,
                )
            except httpx.TransportError as exc:
                wait = self.retry.after_transport_error(attempt)
                if wait is None:
                    raise self._transport_error(call, exc) from exc
            else:
                wait = self._retry_wait(attempt, response)
                if wait is None:
                    return self._read(call, response)
            attempt += 1
            await asyncio.sleep(wait)

    async def close(self) -> None:
        if self._state is not _State.CLOSED:
            self._state = _State.CLOSED
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

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
    ) -> list[MemoryWriteResult] | list[EventPublic]:
        """Store one memory or a batch (all or nothing); duplicates come back as NOOP.

        Chat messages (``[{"role": ..., "content": ...}]``) go in as events instead (session
        ``default`` unless one is given) and come back as events. ``idempotency_key``: your
        own key for this write (one is made per call otherwise); the same key again returns
        the first reply and writes nothing.
        """
        call = MemoryCalls.add(
            memories,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            metadata=metadata,
            kind=kind,
            occurred_at=occurred_at,
            idempotency_key=idempotency_key,
        )
        return (await self._send(call)).data

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
        call = MemoryCalls.search(
            query,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            filters=filters,
            top_k=top_k,
            threshold=threshold,
            fusion=fusion,
        )
        return (await self._send(call)).data

    async def get(self, memory_id: str) -> MemoryPublic:
        return await self._send(MemoryCalls.get(memory_id))

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
        call = MemoryCalls.get_all(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            filters=filters,
            limit=limit,
            cursor=cursor,
            order=order,
        )
        return await self._send(call)

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
        call = MemoryCalls.update(
            memory_id,
            text=text,
            kind=kind,
            metadata=metadata,
            importance=importance,
            occurred_at=occurred_at,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        return await self._send(call)

    async def delete(self, memory_id: str) -> None:
        await self._send(MemoryCalls.delete(memory_id))

    async def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> int:
        """Delete every memory of a scope; returns how many."""
        call = MemoryCalls.delete_all(user_id=user_id, agent_id=agent_id, session_id=session_id)
        return (await self._send(call)).deleted

    async def history(self, memory_id: str) -> list[MemoryHistoryEntry]:
        return (await self._send(MemoryCalls.history(memory_id))).data

    # -- events, sessions, context -----------------------------------------------------------

    async def add_events(
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
        call = EventCalls.add_events(
            events,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            idempotency_key=idempotency_key,
        )
        return (await self._send(call)).data

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
        call = EventCalls.get_events(
            user_id=user_id, agent_id=agent_id, session_id=session_id, limit=limit, cursor=cursor
        )
        return await self._send(call)

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
        call = EventCalls.get_context(
            query,
            messages=messages,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            token_budget=token_budget,
            top_k=top_k,
        )
        return await self._send(call)

    async def get_session(self, session_id: str) -> SessionPublic:
        return await self._send(EventCalls.get_session(session_id))

    async def list_sessions(
        self, *, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[SessionPublic]:
        return await self._send(
            EventCalls.list_sessions(user_id=user_id, limit=limit, cursor=cursor)
        )

    async def close_session(self, session_id: str) -> SessionPublic:
        """Consolidate the session's working memory now."""
        return await self._send(EventCalls.close_session(session_id))

    # -- consolidation, jobs, the entity graph ---------------------------------------------

    async def consolidate(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> JobPublic:
        """Consolidate a scope in the background now; returns the job (poll ``get_job``)."""
        return await self._send(
            JobCalls.consolidate(user_id=user_id, agent_id=agent_id, session_id=session_id)
        )

    async def get_job(self, job_id: str) -> JobPublic:
        """State, step, counts and errors of a consolidation job."""
        return await self._send(JobCalls.get_job(job_id))

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
        return await self._send(
            JobCalls.list_entities(
                user_id=user_id, type=type, name=name, limit=limit, cursor=cursor
            )
        )

    async def get_entity(self, entity_id: str) -> EntityDetail:
        """An entity with its neighbours, relations and the memories that mention it."""
        return await self._send(JobCalls.get_entity(entity_id))

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
        return await self._send(
            JobCalls.list_relations(
                user_id=user_id,
                entity_id=entity_id,
                type=type,
                as_of=as_of,
                limit=limit,
                cursor=cursor,
            )
        )

    async def restore(self, memory_id: str) -> MemoryPublic:
        """Bring an archived (decayed) memory back into default search."""
        return await self._send(JobCalls.restore(memory_id))
