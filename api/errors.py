"""One place that maps errors to JSON responses: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from memsvc.errors import APIStatusError, InvalidRequestError, ServerError, error_for_status
from memsvc.schemas.common import ErrorResponse
from memsvc.schemas.untrusted import error_location
from memsvc.service.availability import DEPENDENCY_ERRORS, unavailable

__all__ = ["ERROR_RESPONSES", "error_response", "field_path", "install_error_handlers"]

log = logging.getLogger(__name__)

# Where FastAPI says an error is (the first part of each location), and the tags of union
# bodies (the part after it): not field names.
_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_UNION_TAGS = {"single", "batch"}

#: Declared on every route, so the OpenAPI document describes the error bodies too.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorResponse, "description": "Refused; nothing was changed."},
    "5XX": {"model": ErrorResponse, "description": "The service failed; retry later."},
}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "batch", "items", 0, "text")`` -> ``"items[0].text"``."""
    rest = list(loc)
    if rest[:1] and rest[0] in _LOCATIONS:
        rest = rest[1:]
        if rest[:1] and rest[0] in _UNION_TAGS:
            rest = rest[1:]
    parts: list[str] = []
    for part in rest:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "body"


class ErrorJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a message quoting the input (an id, a key) stays encodable
    even when the input held a lone surrogate."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def error_response(
    error: APIStatusError, headers: dict[str, str] | None = None, *, detail: bool = False
) -> JSONResponse:
    """The JSON response of an error (the handlers', and middleware's that answers itself);
    ``detail`` adds the message as ``detail`` too, where mem0ai's client reads it."""
    headers = dict(headers or {})
    if error.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if error.retry_after is not None:  # 429, 503, an idempotency key in use: whole seconds
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if error.status_code == 413:
        # The rest of the body was not read: the connection cannot carry another request.
        headers["Connection"] = "close"
    body = error.to_dict()
    if detail:
        body["detail"] = error.message
    return ErrorJSONResponse(body, status_code=error.status_code, headers=headers)


def _for(request: Request) -> dict[str, bool]:
    # The mem0-compatible routes (api/mem0) answer mem0's error shape as well.
    return {"detail": request.url.path.startswith("/mem0/")}


def _validation_error(exc: RequestValidationError) -> InvalidRequestError:
    details = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid" and loc[:1] == ("body",) and len(loc) <= 2:
            # The body itself is not JSON: located at a character offset, not a field.
            reason = err.get("ctx", {}).get("error", "")
            details.append({"field": "body", "message": f"not valid JSON: {reason}"})
            continue
        field = field_path(error_location(err))
        details.append({"field": field, "message": err.get("msg", "")})
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more)"
    return InvalidRequestError(message, field=first["field"], details=details)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers; unexpected exceptions are answered by ``api.guards``."""

    @app.exception_handler(APIStatusError)
    async def _api_error(request: Request, exc: APIStatusError) -> JSONResponse:
        return error_response(exc, **_for(request))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_validation_error(exc), **_for(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = error_for_status(exc.status_code)
        error = cls(str(exc.detail), status_code=exc.status_code)
        return error_response(error, exc.headers, **_for(request))

    async def _dependency_away(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL or Redis away: the request may succeed later; say when to retry.
        log.warning("%s %s: dependency unavailable: %s", request.method, request.url.path, exc)
        retry_after = request.app.state.service.settings.dependencies.retry_after_seconds
        return error_response(unavailable(exc, retry_after), **_for(request))

    for error_class in DEPENDENCY_ERRORS:
        app.add_exception_handler(error_class, _dependency_away)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Backstop behind api.guards.RequestGuard, which answers unexpected errors itself: after
        # this handler Starlette re-raises to the server, which then drops the connection.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(ServerError("internal error; the request may be retried"))
