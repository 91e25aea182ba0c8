"""Everything the SDK clients share that does no I/O: arguments to models, responses to models,
HTTP errors to the exception tree. ``MemoryClient``, ``AsyncMemoryClient`` and the embedded
``Memory`` only add how a call is carried out.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
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

__all__ = [
    "DEFAULT_SESSION",
    "IDEMPOTENCY_HEADER",
    "UNSET",
    "ApiCall",
    "RetryPolicy",
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

#: Sent with every write: a retry of the call carries the same key (see docs/security.md).
IDEMPOTENCY_HEADER = "Idempotency-Key"
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
    for part in err["loc"]:
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


def new_idempotency_key() -> str:
    """A fresh key for one write call (random: two calls never share one)."""
    return f"sdk-{uuid.uuid4().hex}"


@dataclass
class ApiCall:
    """One HTTP request, described without sending it, and how to read its answer.

    A write (POST, PUT, PATCH, DELETE that is not ``read_only``, like search) gets an
    idempotency key when it is described, so every attempt to send it carries the same one.
    """

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    response_type: Any = None  # a pydantic model or type for TypeAdapter, or None
    read_only: bool = False  # a POST that only reads (search, context, KV lookup)
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        if self.idempotency_key is None and self.is_write:
            self.idempotency_key = new_idempotency_key()

    @property
    def is_write(self) -> bool:
        return self.method in _WRITE_METHODS and not self.read_only

    def headers(self) -> dict[str, str]:
        """The call's own headers (its idempotency key)."""
        key = self.idempotency_key if self.is_write else None
        return {IDEMPOTENCY_HEADER: key} if key else {}

    def fingerprint(self) -> str:
        """What the call asks, as a digest (embedded mode checks a reused key against it)."""
        body = json.dumps(self.json, sort_keys=True, separators=(",", ":"), default=str)
        query = json.dumps(self.params, sort_keys=True, default=str)
        return hashlib.sha256("\0".join([self.method, self.path, query, body]).encode()).hexdigest()

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
