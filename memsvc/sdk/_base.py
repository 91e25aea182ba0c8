"""Everything the SDK clients share that does no I/O: arguments to models, responses to models,
HTTP errors to the exception tree. ``MemoryClient``, ``AsyncMemoryClient`` and the embedded
``Memory`` only add how a call is carried out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter, ValidationError

from memsvc.errors import APIStatusError, InvalidRequestError, error_for_status
from memsvc.schemas import (
    ContextRequest,
    EventBatch,
    EventCreate,
    MemoryCreate,
    MemoryFilter,
    MemoryUpdate,
    SearchRequest,
)
from memsvc.schemas.untrusted import error_location

__all__ = [
    "DEFAULT_SESSION",
    "UNSET",
    "ApiCall",
    "Unset",
    "build_add_items",
    "build_context",
    "build_event_batch",
    "build_filter",
    "build_search",
    "is_messages",
]

#: The session chat messages go to when ``add(messages)`` names none.
DEFAULT_SESSION = "default"


class Unset:
    """Marks an argument that was not given (``None`` means "clear it")."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = Unset()

MemoryInput = str | Mapping[str, Any] | MemoryCreate


def invalid_from_validation(exc: ValidationError, prefix: str = "") -> InvalidRequestError:
    """A pydantic error raised while building a request, as the API would report it."""
    err = exc.errors()[0]
    parts = [prefix] if prefix else []
    for part in error_location(err):
        parts.append(f"[{part}]" if isinstance(part, int) else str(part))
    field_name = ".".join(parts).replace(".[", "[") or "body"
    return InvalidRequestError(f"{field_name}: {err['msg']}", field=field_name)


def _scope(**scope: str | None) -> dict[str, str]:
    return {k: v for k, v in scope.items() if v is not None}


def build_add_items(
    memories: MemoryInput | Sequence[MemoryInput],
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    kind: str | None = None,
    occurred_at: datetime | None = None,
) -> list[MemoryCreate]:
    """One text, a memory dict, or a list of either, with the keyword scope applied to each."""
    if isinstance(memories, (str, Mapping, MemoryCreate)):
        memories = [memories]
    defaults: dict[str, Any] = _scope(user_id=user_id, agent_id=agent_id, session_id=session_id)
    if metadata is not None:
        defaults["metadata"] = dict(metadata)
    if kind is not None:
        defaults["kind"] = kind
    if occurred_at is not None:
        defaults["occurred_at"] = occurred_at
    items = []
    for n, item in enumerate(memories):
        if isinstance(item, MemoryCreate):
            item = item.model_dump(exclude_unset=True)
        elif isinstance(item, str):
            item = {"text": item}
        elif not isinstance(item, Mapping):
            raise InvalidRequestError(
                f"items[{n}] must be a text or a memory dict, not {type(item).__name__}",
                field=f"items[{n}]",
            )
        try:
            items.append(MemoryCreate.model_validate({**defaults, **item}))
        except ValidationError as exc:
            raise invalid_from_validation(exc, f"items[{n}]") from exc
    return items


def is_messages(memories: object) -> bool:
    """A list of chat messages (``{"role", "content"}``), as agent frameworks pass them."""
    return (
        isinstance(memories, Sequence)
        and not isinstance(memories, str)
        and len(memories) > 0
        and all(isinstance(m, Mapping) and "role" in m and "content" in m for m in memories)
    )


def build_event_batch(
    events: Sequence[Mapping[str, Any] | EventCreate],
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
) -> EventBatch:
    """Events (dicts or models) and the batch's default scope, validated."""
    items = [e.model_dump(exclude_unset=True) if isinstance(e, EventCreate) else e for e in events]
    try:
        return EventBatch.model_validate(
            {"events": items, "user_id": user_id, "agent_id": agent_id, "session_id": session_id}
        )
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc


def build_context(**fields: Any) -> ContextRequest:
    try:
        return ContextRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc


def build_filter(
    filters: MemoryFilter | Mapping[str, Any] | None = None, **scope: str | None
) -> MemoryFilter:
    """Keyword scope ids merged into an optional filter object."""
    data = filters.model_dump(exclude_none=True) if isinstance(filters, MemoryFilter) else {}
    if isinstance(filters, Mapping):
        data = dict(filters)
    data.update(_scope(**scope))
    try:
        return MemoryFilter.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc, "filters") from exc


def build_search(query: str, filters: MemoryFilter, **options: Any) -> SearchRequest:
    try:
        return SearchRequest.model_validate({"query": query, "filters": filters, **options})
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc


def build_update(**fields: Any) -> dict[str, Any]:
    """The fields actually given (``UNSET`` dropped), validated like a ``MemoryUpdate``."""
    given = {k: v for k, v in fields.items() if v is not UNSET}
    try:
        return MemoryUpdate.model_validate(given).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc


@dataclass
class ApiCall:
    """One HTTP request, described without sending it, and how to read its answer."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    response_type: Any = None  # a pydantic model or type for TypeAdapter, or None

    def parse(self, payload: Any) -> Any:
        if self.response_type is None:
            return payload
        if isinstance(self.response_type, type) and issubclass(self.response_type, BaseModel):
            return self.response_type.model_validate(payload)
        return TypeAdapter(self.response_type).validate_python(payload)


def filter_params(filters: MemoryFilter) -> dict[str, Any]:
    """A ``MemoryFilter`` as query parameters (metadata as JSON)."""
    import json

    params: dict[str, Any] = {}
    for name, value in filters.model_dump(mode="json", exclude_none=True).items():
        params[name] = json.dumps(value) if name == "metadata" else value
    return params


def error_from_response(
    status_code: int, payload: Any, *, request: Any, response: Any
) -> APIStatusError:
    """The exception for an error response (the ``{"error": {...}}`` body when present)."""
    body = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(body, dict):
        body = {"message": f"HTTP {status_code}"}
    cls = error_for_status(status_code)
    return cls(
        str(body.get("message", f"HTTP {status_code}")),
        field=body.get("field"),
        code=body.get("code"),
        details=body.get("details"),
        status_code=status_code,
        request=request,
        response=response,
    )
