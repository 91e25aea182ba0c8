"""Shared pieces of the API contract: scope ids, list envelopes, timestamps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from memsvc.schemas.untrusted import untrusted_error

__all__ = [
    "EARLIEST",
    "LATEST",
    "METADATA_KEY_PATTERN",
    "DeleteResult",
    "ErrorBody",
    "ErrorResponse",
    "ListEnvelope",
    "Metadata",
    "MetadataKey",
    "Page",
    "ScopeId",
    "Strict",
    "UtcDatetime",
    "metadata_schema",
]

T = TypeVar("T")

ScopeId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    Field(description="A scope id inside the tenant (user, agent or session)."),
]

METADATA_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_METADATA_KEY = re.compile(METADATA_KEY_PATTERN)


def _metadata_key(key: str) -> str:
    if not _METADATA_KEY.match(key):
        raise PydanticCustomError(
            "metadata_key",
            "metadata key {key} must be 1-64 characters of letters, digits, _ . : -",
            {"key": ascii(key)},  # escaped: the key may hold what UTF-8 cannot encode
        )
    return key


MetadataKey = Annotated[str, AfterValidator(_metadata_key)]


def metadata_schema(values: dict[str, Any]) -> WithJsonSchema:
    """The JSON schema of a metadata object whose members are ``values``."""
    return WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": METADATA_KEY_PATTERN},
            "additionalProperties": values,
        }
    )


#: Free-form metadata of a memory or event (limits: MEMSVC_MAX_METADATA_BYTES and _DEPTH).
Metadata = Annotated[dict[MetadataKey, Any], metadata_schema({})]

# Timestamps are kept a day inside what datetime can hold, so that converting to UTC, adding a
# tolerance or comparing with "now" never overflows.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _out_of_range() -> PydanticCustomError:
    return PydanticCustomError(
        "datetime_range",
        "timestamp out of range: it must be from {earliest} to {latest} (UTC)",
        {"earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat()},
    )


def _as_utc(value: datetime) -> datetime:
    # Naive timestamps are taken as UTC; everything is stored and returned in UTC.
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise _out_of_range() from exc
    if not EARLIEST <= value <= LATEST:
        raise _out_of_range()
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class Strict(BaseModel):
    """A request model. Unknown fields are refused, so a typo is an error and not a silent
    no-op, and every field passes the untrusted-value check (no NUL or lone surrogate in any
    string or key, 64-bit integers, finite numbers, bounded nesting)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Runs once per field of every subclass; nested models were checked by their own.
        error = untrusted_error(value)
        if error is not None:
            raise error
        return value


class ListEnvelope(BaseModel, Generic[T]):
    """A complete list: ``{data, count}``."""

    data: list[T]
    count: int


class Page(BaseModel, Generic[T]):
    """One page of a cursor-paginated list; pass ``next_cursor`` back to get the next page."""

    data: list[T]
    count: int
    next_cursor: str | None = None


class ErrorBody(BaseModel):
    """What went wrong: a stable ``code``, a readable ``message``, the ``field`` at fault."""

    code: str = Field(description="invalid_request, unauthorized, not_found, conflict, ...")
    message: str
    field: str | None = Field(default=None, description="The offending field, e.g. items[0].text")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Every problem found, when there are several."
    )


class ErrorResponse(BaseModel):
    """Every error the API answers has this body."""

    error: ErrorBody


class DeleteResult(BaseModel):
    """How many memories a delete removed."""

    deleted: int
