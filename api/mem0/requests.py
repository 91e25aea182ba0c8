"""mem0 request bodies and the helpers every mem0 route shares: building memsvc's request
models (a validation error is a 400 naming the field), running an operation through the
handlers, mem0 scope and dates to memsvc filters, and walking cursor pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from api.mem0.filters import split_filters
from memsvc.errors import InvalidRequestError
from memsvc.operations import Call, by_name
from memsvc.schemas import MemoryFilter
from memsvc.schemas.params import MemoryListParams
from memsvc.schemas.untrusted import error_location
from memsvc.service import MemoryService, Principal
from memsvc.service.handlers import dispatch

MAX_BATCH = 1000
MAX_EXPORT = 10_000


class Loose(BaseModel):
    """A mem0 request body: mem0ai sends options memsvc has no use for (``version``,
    ``output_format``, ``rerank``...); those that would change results are refused by name."""

    model_config = ConfigDict(extra="allow")


class Message(Loose):
    role: str = "user"
    content: StrictStr


class Scoped(Loose):
    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    app_id: str | None = None
    filters: dict[str, Any] | None = None


class AddBody(Scoped):
    messages: list[Message] = Field(min_length=1, max_length=1000)
    metadata: dict[str, Any] | None = None
    infer: bool = True
    timestamp: int | float | None = None
    expiration_date: str | None = None


class SearchBody(Scoped):
    query: StrictStr
    top_k: int = Field(default=10, ge=1)
    threshold: float | None = None
    show_expired: bool = False


class ListBody(Scoped):
    start_date: str | None = None
    end_date: str | None = None
    show_expired: bool = False


class UpdateBody(Loose):
    text: StrictStr | None = None
    metadata: dict[str, Any] | None = None
    timestamp: int | float | str | None = None
    expiration_date: str | None = None


class BatchItem(Loose):
    memory_id: str
    text: StrictStr | None = None
    metadata: dict[str, Any] | None = None


class BatchBody(Loose):
    memories: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)


class ExportBody(Scoped):
    schema_: Any = Field(default=None, alias="schema")
    memory_export_id: str | None = None


# Options mem0 documents whose effect memsvc does not have: refused rather than ignored.
REFUSED = {
    "custom_categories": "memsvc has no categories; use metadata",
    "custom_instructions": "set extraction instructions per project in memsvc, not per call",
    "structured_data_schema": "memsvc does not extract structured data on add",
    "categories": "memsvc has no categories; filter on metadata.<key> instead",
    "immutable": "memsvc memories are always updatable",
}


def refuse_options(body: BaseModel, call: str) -> None:
    for name, why in REFUSED.items():
        if (body.model_extra or {}).get(name) not in (None, [], {}, False):
            raise InvalidRequestError(f"mem0 {call}: {name} is not supported ({why})", field=name)


def model(cls: type[BaseModel], **values: Any) -> Any:
    """A memsvc request model; a validation error as a 400 naming the field."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in error_location(err)) or "body"
        raise InvalidRequestError(f"{field}: {err['msg']}", field=field) from exc


def run(service: MemoryService, principal: Principal, op_id: str, **parts: Any) -> Any:
    """One call of the operations table, through the handlers every door uses."""
    return dispatch(service, principal, Call(by_name(op_id), **parts))


def scope_of(body: Scoped) -> tuple[dict[str, str], dict[str, Any] | None]:
    scope, where = split_filters(
        body.filters, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id
    )
    if body.app_id is not None:
        app = {"metadata.app_id": body.app_id}
        where = app if where is None else {"AND": [where, app]}
    return scope, where


def parse_date(value: str, field: str, *, end: bool = False) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequestError(
            f"{field}: {value!r} is not an ISO 8601 date", field=field
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if end and len(value) == 10:  # a day: "on or before" takes all of it
        parsed += timedelta(days=1)
    return parsed


def parse_timestamp(value: int | float | str, field: str) -> datetime:
    if isinstance(value, str):
        return parse_date(value, field)
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidRequestError(f"{field}: {value} is not a Unix timestamp", field=field) from exc


def list_filter(body: ListBody) -> MemoryFilter:
    scope, where = scope_of(body)
    extra: dict[str, Any] = {}
    if body.start_date:
        extra["created_after"] = parse_date(body.start_date, "start_date")
    if body.end_date:
        extra["created_before"] = parse_date(body.end_date, "end_date", end=True)
    if not body.show_expired:
        extra["as_of"] = datetime.now(UTC)
    return model(MemoryFilter, where=where, **scope, **extra)


def walk(
    service: MemoryService, principal: Principal, filters: MemoryFilter, upto: int
) -> tuple[list[Any], bool]:
    """The first ``upto`` memories (newest first) and whether more exist."""
    found: list[Any] = []
    cursor = None
    while True:
        limit = min(1000, upto + 1 - len(found))
        params = MemoryListParams.of(filters, limit=limit, cursor=cursor)
        page = run(service, principal, "memories-list_memories", query=params)
        found.extend(page.data)
        cursor = page.next_cursor
        if len(found) > upto:
            return found[:upto], True
        if cursor is None:
            return found, False
