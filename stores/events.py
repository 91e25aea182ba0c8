"""The append-only event log and the sessions table. Persistence only."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stores.models import EventRow, SessionRow

__all__ = [
    "EventQuery",
    "add_events",
    "add_promoted",
    "advance_extracted",
    "ensure_sessions",
    "events_after",
    "events_by_ids",
    "events_page",
    "get_session",
    "kept_events_after",
    "mark_promoted",
    "sessions_idle_since",
    "sessions_in_scope",
    "sessions_page",
    "sessions_to_consolidate",
    "sessions_with_backlog",
    "touch_session",
    "unpromoted_events",
]


@dataclass(frozen=True)
class EventQuery:
    tenant_id: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    role: str | None = None
    after: datetime | None = None
    before: datetime | None = None


def _where(query: EventQuery) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [EventRow.tenant_id == query.tenant_id]
    for column, value in (
        (EventRow.user_id, query.user_id),
        (EventRow.agent_id, query.agent_id),
        (EventRow.session_id, query.session_id),
        (EventRow.role, query.role),
    ):
        if value is not None:
            clauses.append(column == value)
    if query.after is not None:
        clauses.append(EventRow.event_time >= query.after)
    if query.before is not None:
        clauses.append(EventRow.event_time < query.before)
    return clauses


def add_events(rows: Sequence[EventRow], *, session: Session) -> None:
    session.add_all(rows)
    session.flush()


def events_page(
    query: EventQuery, *, limit: int, after_pk: int | None, session: Session
) -> list[EventRow]:
    """Events in insertion order, after the cursor position."""
    stmt = select(EventRow).where(and_(*_where(query)))
    if after_pk is not None:
        stmt = stmt.where(EventRow.pk > after_pk)
    return list(session.scalars(stmt.order_by(EventRow.pk).limit(limit)))


def events_by_ids(tenant_id: str, ids: Sequence[str], *, session: Session) -> list[EventRow]:
    if not ids:
        return []
    stmt = select(EventRow).where(EventRow.tenant_id == tenant_id, EventRow.id.in_(list(ids)))
    return list(session.scalars(stmt))


def kept_events_after(
    tenant_id: str, session_id: str, after_pk: int, *, session: Session
) -> list[EventRow]:
    """The session's kept events with pk above ``after_pk``, in event-time order."""
    stmt = (
        select(EventRow)
        .where(
            EventRow.tenant_id == tenant_id,
            EventRow.session_id == session_id,
            EventRow.pk > after_pk,
            EventRow.decision == "kept",
        )
        .order_by(EventRow.event_time, EventRow.pk)
    )
    return list(session.scalars(stmt))


def ensure_sessions(rows: Sequence[SessionRow], *, session: Session) -> None:
    """Insert sessions that do not exist yet; safe against concurrent inserts of the same one."""
    if not rows:
        return
    values = [
        {
            "tenant_id": r.tenant_id,
            "id": r.id,
            "user_id": r.user_id,
            "agent_id": r.agent_id,
            "created_at": r.created_at,
            "updated_at": r.created_at,
            "event_count": 0,
            "kept_count": 0,
            "promoted_count": 0,
        }
        for r in rows
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(SessionRow).values(values).on_conflict_do_nothing()
    session.execute(stmt)


def get_session(tenant_id: str, session_id: str, *, session: Session) -> SessionRow | None:
    return session.get(SessionRow, (tenant_id, session_id))


def touch_session(
    tenant_id: str,
    session_id: str,
    *,
    events: int,
    kept: int,
    last_event_at: datetime,
    now: datetime,
    session: Session,
) -> None:
    """Count new events atomically (concurrent writers add up, never overwrite)."""
    latest = func.coalesce(SessionRow.last_event_at, last_event_at)
    newest = (
        func.greatest(latest, last_event_at)
        if session.get_bind().dialect.name == "postgresql"
        else func.max(latest, last_event_at)
    )
    session.execute(
        update(SessionRow)
        .where(SessionRow.tenant_id == tenant_id, SessionRow.id == session_id)
        .values(
            event_count=SessionRow.event_count + events,
            kept_count=SessionRow.kept_count + kept,
            last_event_at=newest,
            updated_at=now,
            closed_at=None,  # a closed session that gets new events is open again
        )
    )


def sessions_page(
    tenant_id: str,
    *,
    user_id: str | None,
    limit: int,
    after_id: str | None,
    session: Session,
) -> list[SessionRow]:
    stmt = select(SessionRow).where(SessionRow.tenant_id == tenant_id)
    if user_id is not None:
        stmt = stmt.where(SessionRow.user_id == user_id)
    if after_id is not None:
        stmt = stmt.where(SessionRow.id > after_id)
    return list(session.scalars(stmt.order_by(SessionRow.id).limit(limit)))


def sessions_idle_since(cutoff: datetime, *, session: Session) -> list[SessionRow]:
    """Sessions with unconsolidated events and no write since ``cutoff`` (wall clock)."""
    stmt = select(SessionRow).where(
        SessionRow.updated_at < cutoff,
        SessionRow.promoted_count < SessionRow.kept_count,
    )
    return list(session.scalars(stmt))


def unpromoted_events(
    tenant_id: str,
    session_id: str | None = None,
    *,
    pks: Collection[int] | None = None,
    session: Session,
) -> list[EventRow]:
    """Kept events whose pieces have not reached long-term memory, in event-time order;
    only those among ``pks`` when given."""
    stmt = select(EventRow).where(
        EventRow.tenant_id == tenant_id,
        EventRow.decision == "kept",
        EventRow.promoted_at.is_(None),
    )
    if session_id is not None:
        stmt = stmt.where(EventRow.session_id == session_id)
    if pks is not None:
        stmt = stmt.where(EventRow.pk.in_(list(pks)))
    return list(session.scalars(stmt.order_by(EventRow.event_time, EventRow.pk)))


def mark_promoted(
    tenant_id: str, event_pks: Sequence[int], at: datetime, *, session: Session
) -> int:
    """Stamp events as promoted; returns how many were not stamped before (idempotent)."""
    if not event_pks:
        return 0
    result = session.execute(
        update(EventRow)
        .where(
            EventRow.tenant_id == tenant_id,
            EventRow.pk.in_(list(event_pks)),
            EventRow.promoted_at.is_(None),
        )
        .values(promoted_at=at)
        # The caller's session holds the rows just written; nothing there needs refreshing.
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def add_promoted(
    tenant_id: str, session_id: str, count: int, at: datetime, *, session: Session
) -> None:
    session.execute(
        update(SessionRow)
        .where(SessionRow.tenant_id == tenant_id, SessionRow.id == session_id)
        .values(promoted_count=SessionRow.promoted_count + count, consolidated_at=at)
    )


def sessions_with_backlog(*, session: Session) -> list[tuple[str, str]]:
    """(tenant, session) pairs that still have kept events not yet promoted."""
    stmt = (
        select(EventRow.tenant_id, EventRow.session_id)
        .where(EventRow.decision == "kept", EventRow.promoted_at.is_(None))
        .distinct()
    )
    return [(t, s) for t, s in session.execute(stmt)]


def events_after(
    tenant_id: str, session_id: str, after_pk: int, *, limit: int, session: Session
) -> list[EventRow]:
    """The session's events (kept or dropped) with pk above ``after_pk``, in pk order."""
    stmt = (
        select(EventRow)
        .where(
            EventRow.tenant_id == tenant_id,
            EventRow.session_id == session_id,
            EventRow.pk > after_pk,
        )
        .order_by(EventRow.pk)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def advance_extracted(
    tenant_id: str, session_id: str, *, expected: int, upto: int, kept: int, session: Session
) -> bool:
    """Move the extraction watermark from ``expected`` to ``upto`` (compare-and-set).

    False when another writer moved it first: the caller's transaction must then be rolled back,
    which is what makes a step safe to run twice at once.
    """
    result = session.execute(
        update(SessionRow)
        .where(
            SessionRow.tenant_id == tenant_id,
            SessionRow.id == session_id,
            SessionRow.extracted_upto == expected,
        )
        .values(extracted_upto=upto, extracted_count=SessionRow.extracted_count + kept)
    )
    return int(result.rowcount or 0) == 1


def sessions_to_consolidate(cutoff: datetime, *, limit: int, session: Session) -> list[SessionRow]:
    """Sessions quiet since ``cutoff`` (wall clock) with events not yet promoted or extracted."""
    stmt = (
        select(SessionRow)
        .where(
            SessionRow.updated_at < cutoff,
            (SessionRow.promoted_count < SessionRow.kept_count)
            | (SessionRow.extracted_count < SessionRow.kept_count),
        )
        .order_by(SessionRow.updated_at)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def sessions_in_scope(
    tenant_id: str,
    *,
    user_id: str | None,
    agent_id: str | None,
    session_id: str | None,
    session: Session,
) -> list[SessionRow]:
    stmt = select(SessionRow).where(SessionRow.tenant_id == tenant_id)
    for column, value in (
        (SessionRow.user_id, user_id),
        (SessionRow.agent_id, agent_id),
        (SessionRow.id, session_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    return list(session.scalars(stmt.order_by(SessionRow.id)))
