"""Background jobs (consolidation) and the entity graph."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from memsvc.schemas.common import ScopeId, Strict
from memsvc.schemas.memories import MemoryPublic
from memsvc.vocabulary import JobState

__all__ = [
    "ConsolidateRequest",
    "EntityDetail",
    "EntityPublic",
    "EntityRef",
    "JobPublic",
    "JobState",
    "Neighbour",
    "RelationPublic",
]


class ConsolidateRequest(Strict):
    """What to consolidate: a session, a user's or agent's sessions, or the whole tenant."""

    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None
    session_id: ScopeId | None = None


class JobPublic(BaseModel):
    id: str
    kind: str
    trigger: str = Field(description="request, idle, overflow, close or schedule.")
    scope: dict[str, Any]
    state: JobState
    step: str | None = Field(description="The step running or last run.")
    counts: dict[str, int] = Field(description="Events read, memories added/updated, ...")
    errors: list[dict[str, Any]] = Field(description="Failed attempts: when, step, error.")
    attempts: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class EntityAlias(BaseModel):
    name: str = Field(description='The other name ("Mel", "Deborah\'s mom").')
    rule: str = Field(description="Why it was merged: 'short form of a known person', ...")
    memory_id: str | None = Field(default=None, description="The fact that used it.")


class EntityPublic(BaseModel):
    id: str
    name: str
    type: str = Field(description="person, place, organisation, thing or activity.")
    user_id: str | None
    mentions: int
    aliases: list[EntityAlias] = Field(
        default_factory=list, description="Other names merged into this one, with evidence."
    )
    created_at: datetime
    updated_at: datetime


class EntityRef(BaseModel):
    id: str
    name: str
    type: str


class RelationPublic(BaseModel):
    id: str
    type: str
    source: EntityRef
    target: EntityRef
    memory_id: str | None = Field(description="The fact that states it.")
    valid_from: datetime | None
    valid_to: datetime | None
    created_at: datetime


class Neighbour(BaseModel):
    entity: EntityRef
    relations: list[str] = Field(description="Relation types joining them ('mentioned with').")


class EntityDetail(EntityPublic):
    neighbours: list[Neighbour]
    relations: list[RelationPublic]
    facts: list[MemoryPublic] = Field(description="Memories that mention it, newest first.")
