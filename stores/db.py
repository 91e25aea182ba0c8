"""Engine and session factory for SQLite (embedded) and PostgreSQL (stack)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["load_json", "make_engine", "make_sessionmaker", "on_commit", "ping"]


def on_commit(session: Session, fn: Any) -> None:
    """Call ``fn()`` once the session's transaction has committed (never on a rollback):
    counters of what was written must not count a write that was rolled back."""
    event.listen(session, "after_commit", lambda _session: fn(), once=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes a second process wait
    # for the write lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# A \uD800-\uDFFF escape in stored JSON text. Such values are refused on input now; rows written
# before that (SQLite kept them) must still be readable, or one row fails every listing.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def load_json(text: str) -> Any:
    """``json.loads``, with lone UTF-16 surrogates replaced by U+FFFD (they cannot be answered
    as JSON). A valid pair is decoded to one character first, so it is kept."""
    value = json.loads(text)
    if _SURROGATE_ESCAPE.search(text):
        value = _without_surrogates(value)
    return value


def make_engine(
    url: str,
    *,
    connect_timeout: int | None = None,
    pool_timeout: float | None = None,
    statement_timeout: float | None = None,
    **kwargs: Any,
) -> Engine:
    """An engine for ``url``; creates the SQLite file's directory when needed.

    On PostgreSQL, ``connect_timeout`` (s), ``pool_timeout`` (s, waiting for a pooled
    connection) and ``statement_timeout`` (s, 0: none) bound every wait on the server, so a
    server that went away is an ``OperationalError`` / pool ``TimeoutError`` in bounded time.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("json_deserializer", load_json)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    if pool_timeout is not None:
        kwargs["pool_timeout"] = pool_timeout
    connect_args = dict(kwargs.pop("connect_args", {}))
    if connect_timeout is not None and url.startswith("postgresql"):
        connect_args["connect_timeout"] = connect_timeout
    if statement_timeout and url.startswith("postgresql"):
        connect_args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    return create_engine(url, connect_args=connect_args, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (rows are turned into schemas after)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def ping(engine: Engine) -> str | None:
    """None when the database answers a trivial query; else the error's class name."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return f"error: {type(exc).__name__}"
    return None
