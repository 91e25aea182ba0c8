"""Shared pieces of the API contract: scope ids, list envelopes, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["DeleteResult", "ListEnvelope", "Page", "ScopeId", "Strict", "UtcDatetime"]

T = TypeVar("T")

ScopeId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    Field(description="A scope id inside the tenant (user, agent or session)."),
]


def _as_utc(value: datetime) -> datetime:
    # Naive timestamps are taken as UTC; everything is stored and returned in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class Strict(BaseModel):
    """Request bodies reject unknown fields so a typo is an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid")


class ListEnvelope(BaseModel, Generic[T]):
    """A complete list: ``{data, count}``."""

    data: list[T]
    count: int


class Page(BaseModel, Generic[T]):
    """One page of a cursor-paginated list; pass ``next_cursor`` back to get the next page."""

    data: list[T]
    count: int
    next_cursor: str | None = None


class DeleteResult(BaseModel):
    """How many memories a delete removed."""

    deleted: int
