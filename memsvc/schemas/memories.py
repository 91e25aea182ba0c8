"""Memory resources: create, update, public view, history, filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    Tag,
)
from pydantic_core import PydanticCustomError

from memsvc.schemas.common import (
    Metadata,
    MetadataKey,
    ScopeId,
    Strict,
    UtcDatetime,
    metadata_schema,
)
from memsvc.schemas.filters import Condition, WhereError, parse_where

__all__ = [
    "MemoryAddBody",
    "MemoryBatch",
    "MemoryCreate",
    "MemoryFilter",
    "MemoryHistoryEntry",
    "MemoryKind",
    "MemoryPublic",
    "MemoryUpdate",
    "MemoryWriteResult",
    "MetadataValue",
    "Scope",
    "Where",
]

MemoryKind = Literal["fact", "preference", "event", "episode", "plan", "note", "message"]
MetadataValue = StrictStr | StrictInt | StrictFloat | StrictBool | None
_SCALAR = {"type": ["string", "integer", "number", "boolean", "null"]}


def _check_where(value: dict[str, Any]) -> dict[str, Any]:
    try:
        parse_where(value)
    except WhereError as exc:
        raise PydanticCustomError("filter_where", "{problem}", {"problem": str(exc)}) from exc
    return value


#: A boolean filter expression (``memsvc.schemas.filters``), kept as the JSON given.
Where = Annotated[
    dict[str, Any],
    AfterValidator(_check_where),
    Field(
        description="Boolean filter: AND/OR/NOT over fields (id, user_id, agent_id, session_id, "
        "kind, text, created_at, updated_at, occurred_at, valid_from, valid_to, importance, "
        "metadata.<key>) with operators eq, ne, in, nin, gt, gte, lt, lte, contains, "
        'icontains, exists, or "*" (set). E.g. {"OR": [{"kind": "preference"}, '
        '{"metadata.topic": {"in": ["food", "travel"]}}]}.'
    ),
]


class Scope(Strict):
    """Who a memory belongs to inside a tenant. All optional; at least one is usual."""

    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    session_id: ScopeId | None = None


class MemoryCreate(Scope):
    """One memory to store."""

    text: StrictStr = Field(description="What to remember; 1 to MEMSVC_MAX_TEXT_CHARS characters.")
    kind: MemoryKind = "fact"
    metadata: Metadata = Field(default_factory=dict)
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    occurred_at: UtcDatetime | None = Field(
        default=None, description="When what this memory states happened; defaults to now."
    )
    valid_from: UtcDatetime | None = None
    valid_to: UtcDatetime | None = None
    source_event_ids: list[Annotated[StrictStr, StringConstraints(max_length=200)]] = Field(
        default_factory=list, max_length=1000, description="Provenance: the events it came from."
    )


class MemoryUpdate(Strict):
    """A partial update; only the fields given change (``metadata: null`` clears it)."""

    text: StrictStr | None = None
    kind: MemoryKind | None = None
    metadata: Metadata | None = None
    importance: float | None = Field(default=None, ge=0.0, le=1.0)
    occurred_at: UtcDatetime | None = None
    valid_from: UtcDatetime | None = None
    valid_to: UtcDatetime | None = None


class MemoryPublic(BaseModel):
    """A stored memory as the API returns it."""

    id: str
    text: str
    kind: str
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    metadata: dict[str, Any]
    importance: float
    created_at: datetime
    updated_at: datetime
    occurred_at: datetime
    valid_from: datetime | None
    valid_to: datetime | None
    content_hash: str
    source_event_ids: list[str]
    strength: float = Field(default=1.0, description="Forgetting-curve strength in (0, 1].")
    access_count: int = Field(default=0, description="Retrievals and repetitions so far.")
    archived_at: datetime | None = Field(
        default=None, description="Set when decay archived it (out of default search)."
    )
    episode_id: str | None = Field(default=None, description="The episode it was extracted in.")


class MemoryWriteResult(MemoryPublic):
    """A memory after a write; ``event`` says what the write did: ADD (a new memory), UPDATE
    (a stored fact got a better wording; facts extracted with ``infer=True`` only) or NOOP
    (already stored; an extracted fact's provenance may have grown)."""

    event: Literal["ADD", "UPDATE", "NOOP"]


class MemoryHistoryEntry(BaseModel):
    """One mutation of a memory."""

    memory_id: str
    op: str
    old_value: dict[str, Any] | None
    new_value: dict[str, Any] | None
    actor: str
    created_at: datetime


class MemoryFilter(Strict):
    """Filters shared by listing, search and bulk delete. Every given field must match."""

    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    session_id: ScopeId | None = None
    kind: MemoryKind | Annotated[list[MemoryKind], Field(max_length=16)] | None = None
    metadata: Annotated[dict[MetadataKey, MetadataValue], metadata_schema(_SCALAR)] | None = Field(
        default=None,
        description="Equality on metadata keys (scalar values only; a number matches the same "
        "number, never a string or boolean). At most MEMSVC_MAX_FILTER_KEYS keys.",
    )
    created_after: UtcDatetime | None = None
    created_before: UtcDatetime | None = None
    occurred_after: UtcDatetime | None = None
    occurred_before: UtcDatetime | None = None
    as_of: UtcDatetime | None = Field(
        default=None, description="Only memories valid then: valid_from <= as_of < valid_to."
    )
    include_archived: bool = Field(default=False, description="Include decayed memories.")
    where: Where | None = None

    def condition(self) -> Condition | None:
        """The parsed ``where`` expression (validated when the filter was built)."""
        return None if self.where is None else parse_where(self.where)

    def has_scope(self) -> bool:
        return any(v is not None for v in (self.user_id, self.agent_id, self.session_id))

    def needs_candidates(self) -> bool:
        """True when the filter narrows a user partition (so search must ask SQL for ids)."""
        narrowing = (
            self.agent_id,
            self.session_id,
            self.kind,
            self.metadata,
            self.created_after,
            self.created_before,
            self.occurred_after,
            self.occurred_before,
            self.as_of,
            self.where,
        )
        return any(v is not None for v in narrowing)


class MemoryBatch(Strict):
    """Several memories in one request (one transaction: all stored or none)."""

    items: list[MemoryCreate]


def _one_or_batch(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "items" in value else "single"


#: The body of ``POST /v1/memories``: one memory, or ``{"items": [...]}``.
MemoryAddBody = Annotated[
    Annotated[MemoryCreate, Tag("single")] | Annotated[MemoryBatch, Tag("batch")],
    Discriminator(_one_or_batch),
]
