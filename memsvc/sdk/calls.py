"""The REST calls of the SDK, described as :class:`ApiCall` values (no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from memsvc.schemas import (
    ContextResponse,
    DeleteResult,
    EntityDetail,
    EntityPublic,
    EventBatch,
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
    SearchResponse,
    SessionPublic,
)
from memsvc.sdk._base import (
    DEFAULT_SESSION,
    UNSET,
    ApiCall,
    MemoryInput,
    build_add_items,
    build_context,
    build_event_batch,
    build_filter,
    build_search,
    build_update,
    filter_params,
    is_messages,
)

__all__ = ["EventCalls", "JobCalls", "MemoryCalls"]


def _id(memory_id: str) -> str:
    return quote(str(memory_id), safe="")


class MemoryCalls:
    """Builds the request for each SDK method; shared by the sync and async clients."""

    @staticmethod
    def add(
        memories: MemoryInput | Sequence[MemoryInput] | Sequence[Mapping[str, Any]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        kind: str | None = None,
        occurred_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> ApiCall:
        if is_messages(memories):
            batch = build_event_batch(
                memories,
                user_id=user_id,
                agent_id=agent_id,
                session_id=session_id or DEFAULT_SESSION,
            )
            return _events_call(batch, idempotency_key)
        items = build_add_items(
            memories,
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            metadata=metadata,
            kind=kind,
            occurred_at=occurred_at,
        )
        dumped = [i.model_dump(mode="json", exclude_unset=True) for i in items]
        # One memory goes as itself so errors name its fields as the embedded Memory does.
        single = isinstance(memories, (str, Mapping, MemoryCreate))
        body = dumped[0] if single else {"items": dumped}
        return ApiCall(
            "POST",
            "/v1/memories",
            json=body,
            response_type=ListEnvelope[MemoryWriteResult],
            idempotency_key=idempotency_key,
        )

    @staticmethod
    def search(
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        filters: MemoryFilter | Mapping[str, Any] | None = None,
        top_k: int = 10,
        threshold: float | None = None,
        fusion: str | None = None,
    ) -> ApiCall:
        scope = build_filter(filters, user_id=user_id, agent_id=agent_id, session_id=session_id)
        request = build_search(query, scope, top_k=top_k, threshold=threshold, fusion=fusion)
        return ApiCall(
            "POST",
            "/v1/search",
            json=request.model_dump(mode="json", exclude_none=True),
            response_type=SearchResponse,
            read_only=True,
        )

    @staticmethod
    def get(memory_id: str) -> ApiCall:
        return ApiCall("GET", f"/v1/memories/{_id(memory_id)}", response_type=MemoryPublic)

    @staticmethod
    def get_all(
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        filters: MemoryFilter | Mapping[str, Any] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        order: str = "desc",
    ) -> ApiCall:
        scope = build_filter(filters, user_id=user_id, agent_id=agent_id, session_id=session_id)
        params = filter_params(scope) | {"limit": limit, "order": order}
        if cursor:
            params["cursor"] = cursor
        return ApiCall("GET", "/v1/memories", params=params, response_type=Page[MemoryPublic])

    @staticmethod
    def update(memory_id: str, **fields: Any) -> ApiCall:
        body = build_update(**fields)
        return ApiCall(
            "PATCH",
            f"/v1/memories/{_id(memory_id)}",
            json={k: _jsonable(v) for k, v in body.items()},
            response_type=MemoryPublic,
        )

    @staticmethod
    def delete(memory_id: str) -> ApiCall:
        return ApiCall("DELETE", f"/v1/memories/{_id(memory_id)}", response_type=DeleteResult)

    @staticmethod
    def delete_all(
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> ApiCall:
        scope = build_filter(None, user_id=user_id, agent_id=agent_id, session_id=session_id)
        return ApiCall(
            "DELETE", "/v1/memories", params=filter_params(scope), response_type=DeleteResult
        )

    @staticmethod
    def history(memory_id: str) -> ApiCall:
        return ApiCall(
            "GET",
            f"/v1/memories/{_id(memory_id)}/history",
            response_type=ListEnvelope[MemoryHistoryEntry],
        )


def _events_call(batch: EventBatch, idempotency_key: str | None = None) -> ApiCall:
    return ApiCall(
        "POST",
        "/v1/events",
        json=batch.model_dump(mode="json", exclude_none=True),
        response_type=ListEnvelope[EventPublic],
        idempotency_key=idempotency_key,
    )


class EventCalls:
    """Events, sessions and context."""

    @staticmethod
    def add_events(
        events: Sequence[Mapping[str, Any] | EventCreate],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> ApiCall:
        batch = build_event_batch(events, user_id=user_id, agent_id=agent_id, session_id=session_id)
        return _events_call(batch, idempotency_key)

    @staticmethod
    def get_events(
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ApiCall:
        params = {
            k: v
            for k, v in {
                "user_id": user_id,
                "agent_id": agent_id,
                "session_id": session_id,
                "limit": limit,
                "cursor": cursor,
            }.items()
            if v is not None
        }
        return ApiCall("GET", "/v1/events", params=params, response_type=Page[EventPublic])

    @staticmethod
    def get_context(query: str | None = None, **fields: Any) -> ApiCall:
        request = build_context(query=query, **fields)
        return ApiCall(
            "POST",
            "/v1/context",
            json=request.model_dump(mode="json", exclude_none=True),
            response_type=ContextResponse,
            read_only=True,
        )

    @staticmethod
    def get_session(session_id: str) -> ApiCall:
        return ApiCall("GET", f"/v1/sessions/{_id(session_id)}", response_type=SessionPublic)

    @staticmethod
    def list_sessions(
        *, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> ApiCall:
        params = {
            k: v
            for k, v in {"user_id": user_id, "limit": limit, "cursor": cursor}.items()
            if v is not None
        }
        return ApiCall("GET", "/v1/sessions", params=params, response_type=Page[SessionPublic])

    @staticmethod
    def close_session(session_id: str) -> ApiCall:
        return ApiCall("POST", f"/v1/sessions/{_id(session_id)}/close", response_type=SessionPublic)


def _given(**values: Any) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in values.items() if v is not None}


class JobCalls:
    """Consolidation jobs, the entity graph, restoring archived memories."""

    @staticmethod
    def consolidate(
        *, user_id: str | None = None, agent_id: str | None = None, session_id: str | None = None
    ) -> ApiCall:
        body = _given(user_id=user_id, agent_id=agent_id, session_id=session_id)
        return ApiCall("POST", "/v1/consolidate", json=body, response_type=JobPublic)

    @staticmethod
    def get_job(job_id: str) -> ApiCall:
        return ApiCall("GET", f"/v1/jobs/{_id(job_id)}", response_type=JobPublic)

    @staticmethod
    def list_entities(
        *,
        user_id: str | None = None,
        type: str | None = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ApiCall:
        params = _given(user_id=user_id, type=type, name=name, limit=limit, cursor=cursor)
        return ApiCall("GET", "/v1/graph/entities", params=params, response_type=Page[EntityPublic])

    @staticmethod
    def get_entity(entity_id: str) -> ApiCall:
        return ApiCall("GET", f"/v1/graph/entities/{_id(entity_id)}", response_type=EntityDetail)

    @staticmethod
    def list_relations(
        *,
        user_id: str | None = None,
        entity_id: str | None = None,
        type: str | None = None,
        as_of: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ApiCall:
        params = _given(
            user_id=user_id, entity_id=entity_id, type=type, as_of=as_of, limit=limit, cursor=cursor
        )
        return ApiCall(
            "GET", "/v1/graph/relations", params=params, response_type=Page[RelationPublic]
        )

    @staticmethod
    def restore(memory_id: str) -> ApiCall:
        return ApiCall("POST", f"/v1/memories/{_id(memory_id)}/restore", response_type=MemoryPublic)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# Keep UNSET importable from here for the clients' signatures.
_ = UNSET
