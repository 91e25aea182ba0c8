"""The database errors callers above ``stores`` may catch, without importing SQLAlchemy."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

__all__ = ["DATABASE_AWAY_ERRORS", "DatabaseError", "IntegrityError", "OperationalError"]

#: Any error the database layer raises.
DatabaseError = SQLAlchemyError

#: The database is away, not the request wrong: lost or refused connections, timeouts
#: (connect, pool, statement), a locked SQLite file.
DATABASE_AWAY_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)
