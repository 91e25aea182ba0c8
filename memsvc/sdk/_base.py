"""Everything the SDK clients share that does no I/O: arguments to models, responses to models,
HTTP errors to the exception tree. ``MemoryClient``, ``AsyncMemoryClient`` and the embedded
``Memory`` only add how a call is carried out.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from memsvc.errors import APIStatusError, InvalidRequestError, ServerError, error_for_status
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

if TYPE_CHECKING:
    import httpx

    from memsvc.operations import Operation

__all__ = [
    "DEFAULT_SESSION",
    "IDEMPOTENCY_HEADER",
    "UNSET",
    "RetryPolicy",
    "Unset",
    "build",
    "build_add_items",
    "build_context",
    "build_event_batch",
    "build_filter",
    "build_search",
    "is_messages",
    "json_body",
    "new_idempotency_key",
    "query_params",
    "read_response",
]

_M = TypeVar("_M")

#: The session chat messages go to when ``add(messages)`` names none.
DEFAULT_SESSION = "default"

#: Sent with every write: every attempt of a call carries the same key (docs/security.md).
IDEMPOTENCY_HEADER = "Idempotency-Key"


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
    infer: bool = False,
) -> EventBatch:
    """Events (dicts or models) and the batch's default scope, validated."""
    items = [e.model_dump(exclude_unset=True) if isinstance(e, EventCreate) else e for e in events]
    fields: dict[str, Any] = {
        "events": items,
        "user_id": user_id,
        "agent_id": agent_id,
        "session_id": session_id,
    }
    if infer:  # sent only when asked: the body of a plain add stays as it was
        fields["infer"] = infer
    try:
        return EventBatch.model_validate(fields)
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


def build_update(**fields: Any) -> MemoryUpdate:
    """A ``MemoryUpdate`` of the fields actually given (``UNSET`` dropped; ``None`` kept: it
    clears)."""
    given = {k: v for k, v in fields.items() if v is not UNSET}
    try:
        return MemoryUpdate.model_validate(given)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc


def build(make: Callable[..., _M], *args: Any, **fields: Any) -> _M:
    """A request model from the arguments given (``None`` ones left out: the model's default
    applies); a validation error as the API would report it."""
    try:
        return make(*args, **{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise invalid_from_validation(exc) from exc


def new_idempotency_key() -> str:
    """A fresh key for one write call (random: two calls never share one)."""
    return f"sdk-{uuid.uuid4().hex}"


def query_params(query: BaseModel | None) -> dict[str, Any] | None:
    """A query model as the request's parameters: its round-trip JSON form (a ``Json`` field
    as its text, a list as repeated parameters), unset values left out."""
    if query is None:
        return None
    return query.model_dump(mode="json", round_trip=True, exclude_none=True)


def json_body(body: BaseModel | None) -> Any:
    """A body model as JSON: only the fields the caller set (an update's ``None`` clears)."""
    if body is None:
        return None
    return body.model_dump(mode="json", exclude_unset=True)


def read_response(op: Operation, response: httpx.Response) -> Any:
    """The operation's response model from an answer, or the error it stands for."""
    try:
        payload = response.json() if response.content else None
    except ValueError:
        payload = None
    if response.is_error:
        raise error_from_response(
            response.status_code, payload, request=response.request, response=response
        )
    if op.response is None:
        return None
    if payload is None:
        raise ServerError(
            f"empty or non-JSON answer to {op.method} {op.path}",
            request=response.request,
            response=response,
        )
    return _adapter(op.response).validate_python(payload)


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def error_from_response(
    status_code: int, payload: Any, *, request: Any, response: Any
) -> APIStatusError:
    """The exception for an error response (the ``{"error": {...}}`` body when present)."""
    body = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(body, dict):
        body = {"message": f"HTTP {status_code}"}
    cls = error_for_status(status_code)
    headers = getattr(response, "headers", None) or {}
    return cls(
        str(body.get("message", f"HTTP {status_code}")),
        field=body.get("field"),
        code=body.get("code"),
        details=body.get("details"),
        status_code=status_code,
        retry_after=parse_retry_after(headers.get("retry-after")),
        request=request,
        response=response,
    )


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is not used by memsvc)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _error_code(payload: Any) -> str | None:
    body = payload.get("error") if isinstance(payload, dict) else None
    return body.get("code") if isinstance(body, dict) else None


@dataclass(frozen=True)
class RetryPolicy:
    """When a client sends a call again, and after how long.

    Retried: transport errors (connect, read, timeout: the reply may be lost after the server
    acted, which the call's idempotency key makes safe), 429 and 503 (after their
    ``Retry-After``), and 409 ``idempotency_in_progress`` (the first attempt still runs).
    At most ``max_retries`` times, waiting ``backoff_seconds * 2**n`` with jitter, never more
    than ``max_backoff_seconds``.
    """

    max_retries: int = 2
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0

    def after_transport_error(self, attempt: int) -> float | None:
        """Seconds to wait before trying again after attempt ``attempt`` (0-based) failed to
        get an answer; ``None``: give up."""
        return self._wait(attempt, None)

    def after_response(
        self, attempt: int, status_code: int, retry_after: str | None, payload: Any
    ) -> float | None:
        """Seconds to wait before trying again after this answer; ``None``: it is final."""
        retried = status_code in (429, 503) or (
            status_code == 409 and _error_code(payload) == "idempotency_in_progress"
        )
        return self._wait(attempt, parse_retry_after(retry_after)) if retried else None

    def _wait(self, attempt: int, retry_after: float | None) -> float | None:
        if attempt >= self.max_retries:
            return None
        backoff = self.backoff_seconds * 2**attempt * random.uniform(0.5, 1.0)
        return min(self.max_backoff_seconds, backoff if retry_after is None else retry_after)
