"""Query parameters of the list and delete routes, as models both sides of the wire share.

The server validates a request's query string with these models; the clients build them and
send their round-trip dump. A JSON-valued parameter (``metadata``) is a :class:`pydantic.Json`
field: a JSON text on the wire, a dict once validated.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, Json

from memsvc.schemas.common import MetadataKey, ScopeId, Strict, UtcDatetime
from memsvc.schemas.events import EventFilter, EventRole
from memsvc.schemas.kv import KVKind
from memsvc.schemas.memories import MemoryFilter, MemoryKind, MetadataValue, Where

__all__ = [
    "CartridgeListParams",
    "CartridgeUploadParams",
    "EntityListParams",
    "EventListParams",
    "KVListParams",
    "MemoryListParams",
    "MemoryScopeParams",
    "PageParams",
    "RelationListParams",
    "SessionKVUploadParams",
    "SessionListParams",
]

Limit = Annotated[int, Field(ge=1, le=1000, description="Items per page.")]
Cursor = Annotated[str | None, Field(default=None, description="``next_cursor`` of a page.")]


class PageParams(Strict):
    """One page of a cursor-paginated listing."""

    limit: Limit = 100
    cursor: Cursor = None


class MemoryScopeParams(Strict):
    """A :class:`MemoryFilter` as query parameters (``metadata`` as a JSON object)."""

    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    session_id: ScopeId | None = None
    kind: Annotated[list[MemoryKind], Field(max_length=16)] | None = None
    metadata: Json[dict[MetadataKey, MetadataValue]] | None = Field(
        default=None, description='A JSON object of metadata equalities, e.g. {"topic": "x"}.'
    )
    created_after: UtcDatetime | None = None
    created_before: UtcDatetime | None = None
    occurred_after: UtcDatetime | None = None
    occurred_before: UtcDatetime | None = None
    as_of: UtcDatetime | None = None
    include_archived: bool = False
    where: Json[Where] | None = Field(
        default=None,
        description='A boolean filter as JSON, e.g. {"OR": [{"kind": "preference"}, '
        '{"metadata.topic": {"in": ["food", "travel"]}}]} (see POST /v1/search filters.where).',
    )

    @classmethod
    def of(cls, filters: MemoryFilter, **extra: Any) -> Any:
        """The parameters that say ``filters`` (plus ``extra``, e.g. the page)."""
        values = filters.model_dump(exclude_none=True)
        if isinstance(values.get("kind"), str):
            values["kind"] = [values["kind"]]
        for name in ("metadata", "where"):
            if name in values:
                values[name] = json.dumps(values[name])
        return cls.model_validate(values | {k: v for k, v in extra.items() if v is not None})

    def to_filter(self) -> MemoryFilter:
        values = self.model_dump(include=set(MemoryFilter.model_fields), exclude_none=True)
        return MemoryFilter.model_validate(values)


class MemoryListParams(MemoryScopeParams):
    limit: Limit = 100
    cursor: Cursor = None
    order: Literal["asc", "desc"] = Field(default="desc", description="By creation time.")


class EventListParams(PageParams):
    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    session_id: ScopeId | None = None
    role: EventRole | None = None
    after: UtcDatetime | None = Field(default=None, description="Event time at or after.")
    before: UtcDatetime | None = Field(default=None, description="Event time before.")

    def to_filter(self) -> EventFilter:
        return EventFilter.model_validate(
            self.model_dump(include=set(EventFilter.model_fields), exclude_none=True)
        )


class SessionListParams(PageParams):
    user_id: ScopeId | None = None


class EntityListParams(PageParams):
    user_id: ScopeId | None = None
    type: str | None = Field(default=None, max_length=64, description="person, place, ...")
    name: str | None = Field(
        default=None, max_length=200, description="Name prefix (case-insensitive)."
    )


class RelationListParams(PageParams):
    user_id: ScopeId | None = None
    entity_id: str | None = Field(default=None, max_length=64)
    type: str | None = Field(default=None, max_length=64)
    as_of: UtcDatetime | None = Field(default=None, description="Only relations valid then.")


class KVListParams(PageParams):
    kind: KVKind | None = None
    model_id: str | None = Field(default=None, max_length=64, description="A fingerprint id.")
    session_id: ScopeId | None = None


class CartridgeListParams(PageParams):
    model_id: str | None = Field(default=None, max_length=64, description="A fingerprint id.")
    name: str | None = Field(default=None, max_length=200)


class _UploadParams(Strict):
    """What accompanies an uploaded container (the body is the file itself)."""

    spec: str | None = Field(
        default=None,
        description="Compress a raw container server-side: a preset name or QuantSpec JSON.",
    )
    metadata: Json[dict[str, Any]] | None = Field(default=None, description="A JSON object.")


class CartridgeUploadParams(_UploadParams):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class SessionKVUploadParams(_UploadParams):
    episode_id: ScopeId | None = Field(default=None, description="One of the session's episodes.")
