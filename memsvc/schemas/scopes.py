"""What each scope of a tenant holds (the inspector's scopes page)."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ScopeCount", "ScopeSummary"]


class ScopeCount(BaseModel):
    id: str = Field(description="The user, agent or session id.")
    memories: int = Field(description="Live memories in the scope, archived ones included.")
    archived: int = Field(description="Of those, archived (decayed) ones.")


class ScopeSummary(BaseModel):
    """The scopes holding the most memories, per kind of scope, most first."""

    users: list[ScopeCount]
    agents: list[ScopeCount]
    sessions: list[ScopeCount]
