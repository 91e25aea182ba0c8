"""One place that maps errors to JSON responses: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from memsvc.errors import APIStatusError, InvalidRequestError, ServerError, error_for_status
from memsvc.service.availability import DEPENDENCY_ERRORS, unavailable

__all__ = ["error_response", "field_path", "install_error_handlers"]

log = logging.getLogger(__name__)

# Locations FastAPI prefixes to every error, and the tags of union bodies: not field names.
_NOISE = {"body", "query", "path", "header", "single", "batch"}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "batch", "items", 0, "text")`` -> ``"items[0].text"``."""
    parts: list[str] = []
    for n, part in enumerate(loc):
        if n < 2 and part in _NOISE:
            continue
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "body"


def _json(error: APIStatusError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else {}
    if error.retry_after is not None:  # 429, 503, an idempotency key in use: whole seconds
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return JSONResponse(error.to_dict(), status_code=error.status_code, headers=headers)


def error_response(error: APIStatusError) -> JSONResponse:
    """The JSON response of an error, for code that answers outside the handlers (middleware)."""
    return _json(error)


def _validation_error(exc: RequestValidationError) -> InvalidRequestError:
    details = []
    for err in exc.errors():
        details.append({"field": field_path(err.get("loc", ())), "message": err.get("msg", "")})
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more)"
    return InvalidRequestError(message, field=first["field"], details=details)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIStatusError)
    async def _api_error(_: Request, exc: APIStatusError) -> JSONResponse:
        return _json(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _json(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        cls = error_for_status(exc.status_code)
        return _json(cls(str(exc.detail), status_code=exc.status_code))

    async def _dependency_away(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL or Redis away: the request may succeed later; say when to retry.
        log.warning("%s %s: dependency unavailable: %s", request.method, request.url.path, exc)
        retry_after = request.app.state.service.settings.dependencies.retry_after_seconds
        return _json(unavailable(exc, retry_after))

    for error_class in DEPENDENCY_ERRORS:
        app.add_exception_handler(error_class, _dependency_away)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Process boundary: record the failure, answer with a JSON 500, never leak internals.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _json(ServerError("internal error; the request may be retried"))
