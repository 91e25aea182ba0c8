"""What every request passes before and around its handler.

``RequestGuard`` (ASGI middleware): the body-size limit (413 before the body is parsed, for a
declared ``Content-Length`` and for chunked bodies alike) and the last line of error handling: an
exception no handler mapped becomes a JSON 500 on a connection that stays usable. Starlette's own
last resort answers and then re-raises to the server, which drops the keep-alive connection.

``check_params`` (app-wide dependency): path and query strings must be valid UTF-8 without NUL.
Bodies are checked by the request models (``memsvc.schemas.common.Strict``).
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_to_bytes

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from memsvc.errors import InvalidRequestError, ServerError
from memsvc.schemas.untrusted import unsafe_text

__all__ = ["BodyTooLarge", "RequestGuard", "check_params"]

log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """413. An HTTPException: FastAPI re-raises those from its body reading (anything else
    there becomes a 400) and the API's one handler answers it; read by a middleware before
    routing (an idempotency key's fingerprint), ``RequestGuard`` answers it itself."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"the request body is larger than {limit} bytes (MEMSVC_MAX_BODY_BYTES)"
        )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class _LimitedReceive:
    """``receive`` counting body bytes. The limit applies to routes that parse a body (a
    FastAPI ``body_field``); KV uploads stream the body themselves, under their own limit."""

    def __init__(self, scope: Scope, receive: Receive, limit: int) -> None:
        self.scope, self.inner, self.limit = scope, receive, limit
        self.seen = 0
        self.applies: bool | None = None  # decided at the first read, once routing is done

    def _decide(self) -> bool:
        route = self.scope.get("route")
        if isinstance(route, APIRoute) and route.body_field is None:
            return False
        declared = _declared_length(self.scope)
        if declared is not None and declared > self.limit:
            raise BodyTooLarge(self.limit)
        return True

    async def __call__(self) -> Message:
        if self.applies is None:
            self.applies = self._decide()
        message = await self.inner()
        if self.applies and message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise BodyTooLarge(self.limit)
        return message


class RequestGuard:
    """Body-size limit and JSON 500s (add it as the app's innermost user middleware)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _LimitedReceive(scope, receive, self.max_body_bytes), tracked)
        except BodyTooLarge as exc:
            if started:
                raise
            error = InvalidRequestError(str(exc.detail), field="body", status_code=413)
            await error_response(error)(scope, receive, send)
        except Exception:
            # Process boundary: record it, answer a JSON 500 and return normally, so the server
            # keeps the connection. A response already under way cannot be repaired: re-raise.
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(ServerError("internal error; the request may be retried"))
            await response(scope, receive, send)


def _decoded(raw: bytes, field: str) -> str:
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(
            f"{field} is not valid UTF-8 once percent-decoded", field=field
        ) from exc
    problem = unsafe_text(text)
    if problem:
        raise InvalidRequestError(f"{field} {problem}", field=field)
    return text


async def check_params(request: Request) -> None:
    """Refuse (422, naming the parameter) path and query strings that are not valid UTF-8 or
    hold NUL: the server would otherwise pass them on with replacement characters or NULs."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    for name, value in request.path_params.items():
        problem = unsafe_text(value) if isinstance(value, str) else None
        if problem:
            raise InvalidRequestError(f"{name} {problem}", field=name)
    _decoded(raw_path.split(b"?", 1)[0], "path")
    for pair in scope.get("query_string", b"").split(b"&"):
        raw_name, _, raw_value = pair.replace(b"+", b" ").partition(b"=")
        if raw_name or raw_value:
            name = _decoded(raw_name, "query")
            _decoded(raw_value, name)
