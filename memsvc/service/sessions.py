"""Sessions: state, counters and working-memory size; closing one consolidates it."""

from __future__ import annotations

from datetime import timedelta

from memsvc.errors import InvalidRequestError, NotFoundError
from memsvc.schemas import Page, SessionPublic
from memsvc.service.deps import ServiceDeps
from memsvc.service.validation import decode_cursor, encode_cursor
from memsvc.service.working import promote_session
from stores import events as store
from stores.models import SessionRow, utcnow

__all__ = ["close_session", "get_session", "list_sessions", "session_state"]


def session_state(row: SessionRow, idle_seconds: float) -> str:
    """``consolidated`` once closed or idle with nothing left to promote or extract, ``idle``
    when quiet (or closed) with a backlog, else ``active``."""
    quiet = row.closed_at is not None or row.updated_at < utcnow() - timedelta(seconds=idle_seconds)
    backlog = row.promoted_count < row.kept_count or row.extracted_count < row.kept_count
    if quiet and not backlog:
        return "consolidated"
    return "idle" if quiet else "active"


def _public(deps: ServiceDeps, row: SessionRow) -> SessionPublic:
    pieces = deps.short_term.pieces(row.tenant_id, row.id)
    return SessionPublic(
        id=row.id,
        user_id=row.user_id,
        agent_id=row.agent_id,
        state=session_state(row, deps.settings.session_idle_seconds),
        created_at=row.created_at,
        last_event_at=row.last_event_at,
        event_count=row.event_count,
        kept_count=row.kept_count,
        promoted_count=row.promoted_count,
        working_pieces=len(pieces),
        working_tokens=sum(p.tokens for p in pieces),
        closed_at=row.closed_at,
        consolidated_at=row.consolidated_at,
    )


def get_session(deps: ServiceDeps, tenant_id: str, session_id: str) -> SessionPublic:
    with deps.sessions() as session:
        row = store.get_session(tenant_id, session_id, session=session)
    if row is None:
        raise NotFoundError(f"session {session_id} not found", field="session_id")
    return _public(deps, row)


def list_sessions(
    deps: ServiceDeps,
    tenant_id: str,
    *,
    user_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[SessionPublic]:
    if not 1 <= limit <= 1000:
        raise InvalidRequestError("limit must be between 1 and 1000", field="limit")
    after = None
    if cursor:
        after = decode_cursor(cursor, {"session": str})["session"]
    with deps.sessions() as session:
        rows = store.sessions_page(
            tenant_id, user_id=user_id, limit=limit + 1, after_id=after, session=session
        )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"session": rows[-1].id}) if more else None
    return Page(data=[_public(deps, r) for r in rows], count=len(rows), next_cursor=next_cursor)


def close_session(deps: ServiceDeps, tenant_id: str, session_id: str) -> SessionPublic:
    """Consolidate the session's working memory now and mark it closed."""
    with deps.sessions() as session:
        if store.get_session(tenant_id, session_id, session=session) is None:
            raise NotFoundError(f"session {session_id} not found", field="session_id")
    promote_session(deps, tenant_id, session_id)
    with deps.sessions.begin() as session:
        row = store.get_session(tenant_id, session_id, session=session)
        assert row is not None, f"session {session_id} vanished while closing"
        row.closed_at = utcnow()
    return get_session(deps, tenant_id, session_id)
