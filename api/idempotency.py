"""``Idempotency-Key`` on write requests (POST, PUT, PATCH, DELETE): a middleware and the
dependency that claims a key for the route that runs.

The middleware checks the key, fingerprints the request as its body streams in (never
buffered) and looks the key up (per tenant):

- answered before: the same request gets the stored reply again, byte for byte, with
  ``Idempotent-Replayed: true``; another request with that key is a 422 naming the header;
- a request with the key is running: 409 ``idempotency_in_progress`` (Retry-After: 1);
- free: the request runs. A route taking ``IdempotencyDep`` (POST /v1/events, POST
  /v1/memories) stores its reply in the transaction of its write: exactly once, even when the
  process dies between commit and reply. On every other route ``claim_idempotency_key`` (a
  dependency of every ``/v1`` route) holds the key while it runs, and the middleware stores a
  2xx reply before sending it; any other reply frees the key again.

Routes marked ``reply_not_stored`` (their reply shows a new API key, a secret never stored)
ignore the header. See ``memsvc/service/idempotency.py`` for the storage side.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import IDEMPOTENCY_STATE, get_idempotency, raw_api_key
from api.errors import error_response
from memsvc.errors import APIStatusError, AuthError
from memsvc.service import MemoryService
from memsvc.service.availability import DEPENDENCY_ERRORS, unavailable
from memsvc.service.idempotency import (
    IdempotentRequest,
    RequestHash,
    StoredReply,
    check_key,
    in_progress,
)

__all__ = [
    "IdempotencyMiddleware",
    "KeyHandle",
    "claim_idempotency_key",
    "reply_not_stored",
]

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NOT_STORED: set[Callable[..., Any]] = set()
_F = TypeVar("_F", bound=Callable[..., Any])


def reply_not_stored(endpoint: _F) -> _F:
    """Mark a route whose reply must never be stored (it holds a secret): it ignores the key."""
    _NOT_STORED.add(endpoint)
    return endpoint


@dataclass
class KeyHandle:
    """A free key on its way through one request: the middleware makes it, the route's
    dependencies use it (``token`` set: claimed; ``request()``: stored by the write)."""

    service: MemoryService
    scope: str  # tenant id, "" for the admin key
    key: str
    hasher: RequestHash
    token: str | None = None

    def request(self, status_code: int) -> IdempotentRequest:
        """For a write's own transaction; the body has been read (and hashed) by then."""
        return IdempotentRequest(self.scope, self.key, self.hasher.hexdigest(), status_code)


def _stores_in_transaction(route: APIRoute) -> bool:
    return any(dep.call is get_idempotency for dep in route.dependant.dependencies)


async def claim_idempotency_key(request: Request) -> None:
    """Hold the request's key while its route runs (routes that store their reply in their
    own transaction, and routes marked ``reply_not_stored``, do not need this)."""
    handle: KeyHandle | None = request.scope.get("state", {}).get(IDEMPOTENCY_STATE)
    route = request.scope.get("route")
    if handle is None or not isinstance(route, APIRoute):
        return
    if route.endpoint in _NOT_STORED or _stores_in_transaction(route):
        return
    keys = handle.service.idempotency
    handle.token = await run_in_threadpool(keys.claim, handle.scope, handle.key)
    if handle.token is None:  # taken since the middleware looked
        raise in_progress(handle.key)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _replay(reply: StoredReply, send: Send) -> None:
    headers = [
        (b"content-type", reply.content_type.encode("latin-1")),
        (b"content-length", str(len(reply.body)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send({"type": "http.response.start", "status": reply.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _drain(receive: Receive, hasher: RequestHash) -> None:
    """Read (and fingerprint) a body the app will not see."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        hasher.update(message.get("body", b""))
        if not message.get("more_body", False):
            return


class IdempotencyMiddleware:
    """See the module docstring. Errors it answers itself are the API's JSON errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            return await self.app(scope, receive, send)
        raw = _header(scope, b"idempotency-key")
        if raw is None:
            return await self.app(scope, receive, send)
        service: MemoryService = scope["app"].state.service
        try:
            handle = await self._handle(scope, service, raw)
            if handle is None:
                return await self.app(scope, receive, send)
            seen = await run_in_threadpool(service.idempotency.lookup, handle.scope, handle.key)
            if seen is not None:
                await _drain(receive, handle.hasher)
                return await _replay(seen.replay(handle.key, handle.hasher.hexdigest()), send)
        except APIStatusError as exc:
            response = error_response(exc)
        except DEPENDENCY_ERRORS as exc:
            retry = service.settings.dependencies.retry_after_seconds
            response = error_response(unavailable(exc, retry))
        else:
            return await self._run(handle, scope, receive, send)
        await response(scope, receive, send)

    async def _handle(self, scope: Scope, service: MemoryService, raw: str) -> KeyHandle | None:
        api_key = raw_api_key(_header(scope, b"authorization"), _header(scope, b"x-api-key"))
        principal = service.tenants.cached_principal(api_key)
        if principal is None:
            try:
                principal = await run_in_threadpool(service.tenants.authenticate, api_key)
            except AuthError:
                return None  # the route answers 401 itself
        key = check_key(raw, service.settings.idempotency.max_key_length)
        hasher = RequestHash(scope["method"], scope["path"], scope.get("query_string", b""))
        return KeyHandle(service, principal.tenant_id or "", key, hasher)

    async def _run(self, handle: KeyHandle, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with the key free; keep a claimed request's 2xx reply before sending
        it, free the key otherwise."""
        scope.setdefault("state", {})[IDEMPOTENCY_STATE] = handle
        keys = handle.service.idempotency
        start: Message = {}
        chunks: list[bytes] = []

        async def hashing() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                handle.hasher.update(message.get("body", b""))
            return message

        async def hold(message: Message) -> None:
            nonlocal start
            if handle.token is None:  # not claimed: the route stored its reply, or none is kept
                return await send(message)
            if message["type"] == "http.response.start":
                start = message
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            token, handle.token = handle.token, None
            await _settle(handle, token, start["status"], start.get("headers", []), chunks)
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks)})

        try:
            await self.app(scope, hashing, hold)
        finally:
            if handle.token is not None:  # failed before its reply: the key is free again
                with contextlib.suppress(*DEPENDENCY_ERRORS):  # else its lock's end frees it
                    await run_in_threadpool(keys.release, handle.scope, handle.key, handle.token)


async def _settle(
    handle: KeyHandle, token: str, status: int, headers: list[Any], chunks: list[bytes]
) -> None:
    """Keep a 2xx reply under the claimed key; give the key back after any other reply."""
    keys = handle.service.idempotency
    if not 200 <= status < 300:
        with contextlib.suppress(*DEPENDENCY_ERRORS):
            await run_in_threadpool(keys.release, handle.scope, handle.key, token)
        return
    content_type = dict(headers).get(b"content-type", b"application/json").decode("latin-1")
    reply = StoredReply(status, content_type, b"".join(chunks))
    fingerprint = handle.hasher.hexdigest()
    try:
        await run_in_threadpool(keys.complete, handle.scope, handle.key, token, fingerprint, reply)
    except DEPENDENCY_ERRORS as exc:  # the write is done: answer it all the same
        log.warning("reply for key %s not kept (held until its lock ends): %s", handle.key, exc)
