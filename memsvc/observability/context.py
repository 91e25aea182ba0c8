"""The request being served: its id, tenant and route, visible to every log line it causes.

The API's middleware opens a :class:`RequestInfo` per request (``X-Request-ID`` taken from the
caller, or a new one) in a context variable; the auth dependency fills in the tenant, routing
the route. Threads started for the request (FastAPI's thread pool) copy the context, and jobs
carry the id: the embedded job thread runs in a copy of the submitting context, Celery tasks
get it as a message header (``consolidation.tasks``), so a job's log lines name the request
that started it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = [
    "HEADER",
    "RequestInfo",
    "current",
    "current_request_id",
    "new_request_id",
    "request_scope",
    "valid_request_id",
]

HEADER = "X-Request-ID"
# What a caller's id may be (anything else is replaced by a new id: it goes into log lines).
_VALID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


@dataclass
class RequestInfo:
    """Mutable on purpose: code deeper in the request (auth, routing) fills it in, and the
    middleware that opened it reads it when the response is done."""

    request_id: str
    tenant: str | None = None
    route: str | None = None


_current: ContextVar[RequestInfo | None] = ContextVar("memsvc_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str | None:
    """The caller's id if it is safe to log and echo, else None."""
    return value if value and _VALID.match(value) else None


def current() -> RequestInfo | None:
    return _current.get()


def current_request_id() -> str | None:
    info = _current.get()
    return None if info is None else info.request_id


@contextmanager
def request_scope(request_id: str | None = None, **fields: str | None) -> Iterator[RequestInfo]:
    """Run a block as (part of) the request ``request_id`` (a new id when None)."""
    info = RequestInfo(valid_request_id(request_id) or new_request_id(), **fields)
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)
