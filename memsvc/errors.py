"""The one exception tree of memsvc, shared by the service, the REST API and every SDK client.

::

    MemsvcError
    ├── TransportError            the server could not be reached (connect, timeout); SDK only
    └── APIStatusError            a request was refused; ``status_code``, ``code``, ``field``
        ├── InvalidRequestError   400 / 413 / 422: bad input, names the field
        ├── AuthError             401: missing or unknown API key
        ├── PermissionDeniedError 403: the key may not do this
        ├── NotFoundError         404: names the missing id
        ├── ConflictError         409
        ├── RateLimitError        429: too many requests for this key; ``retry_after``
        └── ServerError           5xx
            └── ServiceUnavailableError 503: a dependency (database, Redis) is away; ``retry_after``

The embedded :class:`~memsvc.sdk.Memory` raises the same classes the REST clients raise, so one
``except NotFoundError`` works in both modes. Over HTTP, ``request`` and ``response`` carry the
httpx objects; in-process they are ``None``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "APIStatusError",
    "AuthError",
    "ConflictError",
    "InvalidRequestError",
    "MemsvcError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "ServiceUnavailableError",
    "TransportError",
    "error_for_status",
]


class MemsvcError(Exception):
    """Root of every error memsvc raises on purpose."""

    def __init__(self, message: str, *, request: Any = None, response: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.response = response


class TransportError(MemsvcError):
    """The server could not be reached or did not answer in time."""


class APIStatusError(MemsvcError):
    """A request the service refused; maps one-to-one to an HTTP status."""

    status_code: ClassVar[int] = 500
    default_code: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        request: Any = None,
        response: Any = None,
    ) -> None:
        super().__init__(message, request=request, response=response)
        self.field = field
        self.code = code or self.default_code
        self.details = details or []
        # Seconds after which a retry may succeed (the ``Retry-After`` header), when known.
        self.retry_after = retry_after
        if status_code is not None:
            self.status_code = status_code  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body the API returns (``{"error": {...}}``)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return {"error": body}


class InvalidRequestError(APIStatusError):
    """Bad input: wrong type, out of range, malformed filter or cursor."""

    status_code = 422
    default_code = "invalid_request"


class AuthError(APIStatusError):
    """Missing, malformed or unknown API key."""

    status_code = 401
    default_code = "unauthorized"


class PermissionDeniedError(APIStatusError):
    """The key is valid but may not do this (e.g. a tenant key on an admin route)."""

    status_code = 403
    default_code = "forbidden"


class NotFoundError(APIStatusError):
    """The id does not exist for this tenant (another tenant's ids look the same as none)."""

    status_code = 404
    default_code = "not_found"


class ConflictError(APIStatusError):
    """The request conflicts with the current state."""

    status_code = 409
    default_code = "conflict"


class RateLimitError(APIStatusError):
    """The key sent more requests than its rate limit allows; retry after ``retry_after``."""

    status_code = 429
    default_code = "rate_limited"


class ServerError(APIStatusError):
    """The service failed; the request may be retried."""

    status_code = 500
    default_code = "internal_error"


class ServiceUnavailableError(ServerError):
    """A dependency (the database, Redis) cannot be reached now; retry after ``retry_after``."""

    status_code = 503
    default_code = "unavailable"


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: InvalidRequestError,
    401: AuthError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: InvalidRequestError,
    409: ConflictError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def error_for_status(status_code: int) -> type[APIStatusError]:
    """The exception class that stands for an HTTP status."""
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    return InvalidRequestError if 400 <= status_code < 500 else ServerError
