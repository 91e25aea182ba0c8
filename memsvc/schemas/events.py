"""Events (raw chat turns), sessions and context assembly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictStr

from memsvc.schemas.common import ListEnvelope, Metadata, ScopeId, Strict, UtcDatetime
from memsvc.schemas.memories import MemoryWriteResult

__all__ = [
    "ContextItem",
    "ContextMessage",
    "ContextRequest",
    "ContextResponse",
    "EventBatch",
    "EventCreate",
    "EventFilter",
    "EventPublic",
    "EventRole",
    "EventsAdded",
    "SessionPublic",
    "SessionState",
]

EventRole = Literal["user", "assistant", "system", "tool"]
SessionState = Literal["active", "idle", "consolidated"]


class EventFilter(Strict):
    """Which events to list: scope, role and event time (``after`` <= time < ``before``).
    The tenant always comes from the caller's key."""

    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    session_id: ScopeId | None = None
    role: EventRole | None = None
    after: UtcDatetime | None = None
    before: UtcDatetime | None = None


class EventCreate(Strict):
    """One chat event. Scope ids left out are taken from the batch."""

    role: EventRole = "user"
    speaker: StrictStr | None = Field(default=None, max_length=200, description="Who spoke.")
    content: StrictStr
    event_time: UtcDatetime | None = Field(default=None, description="When it was said; now.")
    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    session_id: ScopeId | None = None
    metadata: Metadata = Field(default_factory=dict)


class EventBatch(Strict):
    """Events in one request: committed together before they are acknowledged."""

    events: list[EventCreate]
    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    session_id: ScopeId | None = None
    infer: StrictBool = Field(
        default=False,
        description="Extract facts from these events now, in the same transaction, and return "
        "them (``facts``) with their ADD/UPDATE/NOOP decisions; idle-session consolidation then "
        "leaves these events' facts alone.",
    )


class EventPublic(BaseModel):
    id: str
    session_id: str
    user_id: str | None
    agent_id: str | None
    role: str
    speaker: str | None
    content: str
    event_time: datetime
    metadata: dict[str, Any]
    decision: str = Field(description="What the sensory gate did: kept, dropped:filler, ...")
    pieces: list[str] = Field(description="The kept pieces (long messages are split).")
    created_at: datetime
    promoted_at: datetime | None


class EventsAdded(ListEnvelope[EventPublic]):
    """Events written (``data``, with their gate decisions) and, with ``infer=True``, the
    facts extracted from them (``null`` without ``infer``)."""

    facts: list[MemoryWriteResult] | None = Field(
        default=None, description="Facts extracted from the events (infer=True), in order."
    )


class SessionPublic(BaseModel):
    id: str
    user_id: str | None
    agent_id: str | None
    state: SessionState
    created_at: datetime
    last_event_at: datetime | None
    event_count: int
    kept_count: int
    promoted_count: int
    working_pieces: int = Field(description="Pieces now in short-term memory.")
    working_tokens: int
    closed_at: datetime | None
    consolidated_at: datetime | None


class ContextMessage(Strict):
    role: EventRole = "user"
    content: StrictStr


class ContextRequest(Strict):
    """What to assemble a prompt block for."""

    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    session_id: ScopeId | None = None
    query: StrictStr | None = None
    messages: list[ContextMessage] | None = Field(
        default=None, description="The latest messages; used as the query when none is given."
    )
    token_budget: int = Field(default=1024, ge=32, le=32768)
    top_k: int = Field(default=20, ge=1)


class ContextItem(BaseModel):
    section: Literal["working_memory", "facts", "episodes"]
    tier: Literal["short_term", "long_term"]
    text: str = Field(description="The line as it appears in the block.")
    occurred_at: datetime | None
    score: float | None
    memory_id: str | None
    source_event_ids: list[str]


class ContextResponse(BaseModel):
    context: str = Field(description="The prompt-ready block.")
    tokens: int = Field(description="Tokens of ``context`` by the embedder's tokenizer.")
    token_budget: int
    items: list[ContextItem]
