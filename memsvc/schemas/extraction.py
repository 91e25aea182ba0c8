"""A project's extraction configuration: instructions and categories, versioned per scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictStr, StringConstraints

from memsvc.schemas.common import ScopeId, Strict

__all__ = [
    "CategorySpec",
    "ExtractionConfigPublic",
    "ExtractionConfigUpdate",
    "ExtractionScopeParams",
]

_Name = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
_Keyword = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)
]


class CategorySpec(Strict):
    """A category memories can carry: its name, the keywords that signal it (the rules
    extractor tags by them; the name counts as one) and a description for the LLM."""

    name: _Name
    keywords: list[_Keyword] = Field(default_factory=list, max_length=100)
    description: StrictStr = Field(default="", max_length=500)


class ExtractionScopeParams(Strict):
    """Whose configuration: the tenant's (no ids), or one narrowed to a user and/or agent."""

    user_id: ScopeId | None = None
    agent_id: ScopeId | None = None


class ExtractionConfigUpdate(ExtractionScopeParams):
    """A new version of a scope's configuration (the whole configuration, not a patch)."""

    instructions: StrictStr = Field(
        default="",
        max_length=4000,
        description="Added to the LLM extractor's prompt, e.g. 'Ignore small talk about food'.",
    )
    categories: list[CategorySpec] = Field(default_factory=list, max_length=50)


class ExtractionConfigPublic(BaseModel):
    """One version of a configuration; ``version`` 0: none stored (the defaults)."""

    user_id: str | None
    agent_id: str | None
    version: int
    instructions: str
    categories: list[CategorySpec]
    actor: str | None
    created_at: datetime | None
