"""Idempotency keys. Persistence only: which row may be taken, and by whom, is one statement.

A key can be taken (``claim``, ``record``) when it has no row, when its row expired, or when a
``pending`` row's lock ran out (the request that held it died). Both are one
``INSERT .. ON CONFLICT DO UPDATE .. WHERE`` on (scope, key), so of two requests racing for a
key exactly one wins, on SQLite and on PostgreSQL (which makes the second wait for the first's
transaction and then sees its row).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stores.models import IdempotencyRow

__all__ = ["claim", "complete", "find", "purge_expired", "record", "release"]

_TABLE = IdempotencyRow.__table__
_DONE_FIELDS = ("fingerprint", "status_code", "content_type", "body")


def find(scope: str, key: str, *, session: Session) -> IdempotencyRow | None:
    return session.get(IdempotencyRow, (scope, key))


def _takeable(now: datetime) -> Any:
    # In ON CONFLICT DO UPDATE, the table's columns are the row already there.
    return or_(
        _TABLE.c.expires_at <= now,
        and_(_TABLE.c.state == "pending", _TABLE.c.locked_until <= now),
    )


def _upsert(values: dict[str, Any], now: datetime, *, session: Session) -> bool:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_TABLE).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["scope", "key"],
        set_={name: stmt.excluded[name] for name in values if name not in ("scope", "key")},
        where=_takeable(now),
    ).returning(_TABLE.c.key)
    return session.execute(stmt).first() is not None


def _row(scope: str, key: str, now: datetime, expires_at: datetime, **fields: Any) -> dict:
    """Every column of a row taking the key (unset ones NULL, so a taken-over row is clean)."""
    blank = dict.fromkeys(("token", "locked_until", *_DONE_FIELDS))
    return {
        "scope": scope,
        "key": key,
        "created_at": now,
        "expires_at": expires_at,
        **blank,
        **fields,
    }


def claim(
    scope: str,
    key: str,
    token: str,
    *,
    now: datetime,
    locked_until: datetime,
    expires_at: datetime,
    session: Session,
) -> bool:
    """Hold the key for a request about to run (a ``pending`` row); False when it is taken."""
    values = _row(
        scope, key, now, expires_at, state="pending", token=token, locked_until=locked_until
    )
    return _upsert(values, now, session=session)


def record(
    scope: str,
    key: str,
    *,
    fingerprint: str,
    status_code: int,
    content_type: str,
    body: bytes,
    now: datetime,
    expires_at: datetime,
    session: Session,
) -> bool:
    """Store the reply of a write inside the write's transaction; False when the key is taken."""
    reply = {"status_code": status_code, "content_type": content_type, "body": body}
    values = _row(scope, key, now, expires_at, state="done", fingerprint=fingerprint, **reply)
    return _upsert(values, now, session=session)


def complete(
    scope: str,
    key: str,
    token: str,
    *,
    fingerprint: str,
    status_code: int,
    content_type: str,
    body: bytes,
    session: Session,
) -> bool:
    """Turn a claim into the stored reply; False when the claim was lost (taken over)."""
    stmt = (
        update(_TABLE)
        .where(_TABLE.c.scope == scope, _TABLE.c.key == key, _TABLE.c.token == token)
        .where(_TABLE.c.state == "pending")
        .values(
            state="done",
            token=None,
            locked_until=None,
            fingerprint=fingerprint,
            status_code=status_code,
            content_type=content_type,
            body=body,
        )
    )
    return session.execute(stmt).rowcount == 1


def release(scope: str, key: str, token: str, *, session: Session) -> None:
    """Give a claim back (the request failed and wrote nothing): the key is free again."""
    session.execute(
        delete(_TABLE).where(
            _TABLE.c.scope == scope,
            _TABLE.c.key == key,
            _TABLE.c.token == token,
            _TABLE.c.state == "pending",
        )
    )


def purge_expired(now: datetime, *, session: Session) -> int:
    """Delete every expired key; returns how many (a key taken again meanwhile is not expired)."""
    return session.execute(delete(_TABLE).where(_TABLE.c.expires_at <= now)).rowcount
