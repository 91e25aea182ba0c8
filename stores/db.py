"""Engine and session factory for SQLite (embedded) and PostgreSQL (stack)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "current_xid",
    "load_json",
    "make_engine",
    "make_sessionmaker",
    "on_commit",
    "ping",
    "reclaim_deleted",
]


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
    # Deleted content is overwritten with zeros, not left in free pages: a purge really erases
    # (docs/security.md, "Purge"). Costs a little write bandwidth on deletes.
    cursor.execute("PRAGMA secure_delete=ON")
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


def current_xid(session: Any) -> str | None:
    """PostgreSQL: the id of the session's transaction (assigned once it wrote); else None."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return str(session.execute(text("SELECT pg_current_xact_id()::text")).scalar_one())


# A transaction that started before the purge committed (or an autovacuum ANALYZE) may still
# see the deleted rows: VACUUM keeps them for it. Wait (bounded) until none is left.
_OLDER_SNAPSHOTS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL "
    "AND age(backend_xmin) >= age(CAST(CAST(CAST(:xid AS bigint) % 4294967296 AS text) AS xid))"
)


def _wait_for_older_snapshots(connection: Any, xid: str, wait_s: float) -> int:
    deadline = time.monotonic() + wait_s
    while True:
        holding = int(connection.execute(_OLDER_SNAPSHOTS, {"xid": xid}).scalar_one())
        if holding == 0 or time.monotonic() >= deadline:
            return holding
        time.sleep(0.2)


def reclaim_deleted(
    engine: Engine,
    tables: tuple[str, ...],
    *,
    vacuum: str = "full",
    xid: str | None = None,
    wait_s: float = 60.0,
) -> str:
    """After a purge, make the deleted bytes leave the database's files; returns what it did.

    SQLite (``secure_delete`` is on) zeroes deleted cells as it writes, but the write-ahead
    log still holds the pages as they were: a ``TRUNCATE`` checkpoint copies them back and
    empties the log. PostgreSQL keeps dead tuples in the table files until they are
    rewritten: ``vacuum="full"`` runs ``VACUUM (FULL, ANALYZE)`` on ``tables`` (new files,
    fresh statistics; an exclusive lock on each table while it runs), ``"plain"`` a plain
    ``VACUUM (ANALYZE)`` (marks the space free, does not overwrite it), ``"off"`` nothing.
    ``xid`` (the purge's transaction): first wait up to ``wait_s`` for every snapshot that
    may still see the deleted rows, since VACUUM keeps rows someone can still see.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        return "sqlite: wal checkpoint " + ("busy (a reader held the log)" if busy else "truncated")
    if engine.dialect.name != "postgresql" or vacuum == "off":
        return f"{engine.dialect.name}: nothing reclaimed"
    options = "(FULL, ANALYZE)" if vacuum == "full" else "(ANALYZE)"
    done, note = 0, ""
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            # A rewrite of a large table may take longer than the requests' statement timeout.
            connection.exec_driver_sql("SET statement_timeout = 0")
            holding = _wait_for_older_snapshots(connection, xid, wait_s) if xid else 0
            if holding:
                note = f"; {holding} older snapshots still open: rerun VACUUM FULL later"
            for table in tables:
                connection.exec_driver_sql(f"VACUUM {options} {table}")
                done += 1
    except SQLAlchemyError as exc:  # the purge is committed; say what is left to do
        return (
            f"postgresql: VACUUM {options} stopped after {done} of {len(tables)} tables "
            f"({type(exc).__name__}); run it by hand"
        )
    return f"postgresql: VACUUM {options} on {len(tables)} tables{note}"
