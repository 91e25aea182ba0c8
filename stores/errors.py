"""The database errors callers above ``stores`` may catch, without importing SQLAlchemy."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

__all__ = ["DatabaseError", "IntegrityError", "OperationalError"]

#: Any error the database layer raises.
DatabaseError = SQLAlchemyError
