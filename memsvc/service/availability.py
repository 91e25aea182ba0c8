"""Which failures mean "a dependency is away" (PostgreSQL, Redis): a 503 with Retry-After.

Such an error says nothing about the request: the same request may succeed once the database
or Redis is back, so the API answers ``ServiceUnavailableError`` instead of a 500, and the
background loops log one line instead of a traceback.
"""

from __future__ import annotations

import redis

from memsvc.errors import ServiceUnavailableError
from stores.errors import DATABASE_AWAY_ERRORS

__all__ = ["DATABASE_ERRORS", "DEPENDENCY_ERRORS", "REDIS_ERRORS", "unavailable"]

# Lost or refused connections, timeouts (connect, pool, statement), a locked SQLite file.
DATABASE_ERRORS = DATABASE_AWAY_ERRORS
# BusyLoadingError (a restarted Redis reading its dump) is a ConnectionError.
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
DEPENDENCY_ERRORS = DATABASE_ERRORS + REDIS_ERRORS


def unavailable(exc: BaseException, retry_after: float) -> ServiceUnavailableError:
    """The 503 for a dependency error, naming the dependency (never the internals)."""
    what = "Redis" if isinstance(exc, REDIS_ERRORS) else "the database"
    return ServiceUnavailableError(
        f"{what} is unavailable ({type(exc).__name__}); retry after {retry_after:g}s",
        retry_after=retry_after,
    )
