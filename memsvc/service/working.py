"""Working memory over time: rebuild from the event log, and promotion to long-term memory.

Promotion reads the durable event log (not the short-term store), so it works after a Redis
restart and is idempotent: events are stamped ``promoted_at`` in the same transaction that
writes their memories, and a memory written twice for the same event is a NOOP. Until the
consolidation workers take over, promotion writes one ``message`` memory per kept piece,
reusing the piece's vector (nothing is embedded here: promotion may run inside a request).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import redis

from memsvc.schemas import MemoryCreate
from memsvc.service.deps import ServiceDeps
from memsvc.service.events import pieces_of
from memsvc.service.memories import insert_memories
from memsvc.tiers.working import overflow, segment
from stores import events as store
from stores.models import EventRow, utcnow
from stores.short_term import Piece

__all__ = [
    "promote_due",
    "promote_idle",
    "promote_session",
    "rebuild_short_term",
    "restore_short_term",
]

log = logging.getLogger(__name__)

ACTOR = "system:promotion"


def rebuild_short_term(deps: ServiceDeps) -> int:
    """Put every unpromoted piece back into working memory (idempotent); returns the count."""
    added = 0
    with deps.sessions() as session:
        backlog = store.sessions_with_backlog(session=session)
    for tenant_id, session_id in backlog:
        with deps.sessions() as session:
            rows = store.unpromoted_events(tenant_id, session_id, session=session)
        pieces = pieces_of(rows, deps)
        deps.short_term.add(tenant_id, pieces)
        added += len(pieces)
    return added


def restore_short_term(deps: ServiceDeps, *, force: bool = False) -> int | None:
    """Refill working memory from the event log when it missed a write or lost its content
    (Redis restarted empty), or always with ``force``; returns pieces added, None if not.

    The store is marked intact before the refill: if it is lost again meanwhile, the next
    call sees it. While Redis is away this only notes that a refill is due (the next call,
    e.g. the maintenance tick, tries again).
    """
    try:
        if not force and not deps.short_term_lost.is_set() and deps.short_term.intact():
            return None
        deps.short_term_lost.clear()
        deps.short_term.mark_intact()
        return rebuild_short_term(deps)
    except redis.RedisError as exc:
        deps.short_term_lost.set()
        log.warning("working memory unavailable; refilled once Redis answers: %s", exc)
        return None


def _memory_for(piece: Piece, row: EventRow) -> MemoryCreate:
    metadata = {
        "speaker": piece.speaker,
        "role": piece.role,
        "piece_id": piece.id,
    }
    return MemoryCreate(
        text=piece.text,
        kind="message",
        user_id=row.user_id,
        agent_id=row.agent_id,
        session_id=row.session_id,
        metadata={k: v for k, v in metadata.items() if v is not None},
        occurred_at=row.event_time,
        source_event_ids=[row.id],
    )


def _promote_rows(deps: ServiceDeps, tenant_id: str, session_id: str, rows: list[EventRow]) -> int:
    """Write the rows' pieces to long-term memory and stamp the rows, in one transaction."""
    if not rows:
        return 0
    row_of = {row.pk: row for row in rows}
    pieces = [(p, row_of[p.event_pk]) for p in pieces_of(rows, deps)]
    items = [_memory_for(p, row) for p, row in pieces]
    vectors = np.stack([p.vector for p, _ in pieces]) if pieces else None
    now = utcnow()
    with deps.sessions.begin() as session:
        if items:
            insert_memories(session, deps, tenant_id, items, vectors, actor=ACTOR)
        stamped = store.mark_promoted(tenant_id, [r.pk for r in rows], now, session=session)
        store.add_promoted(tenant_id, session_id, stamped, now, session=session)
    deps.short_term.remove(tenant_id, session_id, [p.id for p, _ in pieces])
    return stamped


def promote_session(deps: ServiceDeps, tenant_id: str, session_id: str) -> int:
    """Move all of a session's working memory to long-term memory; returns events promoted."""
    with deps.sessions() as session:
        rows = store.unpromoted_events(tenant_id, session_id, session=session)
    return _promote_rows(deps, tenant_id, session_id, rows)


def promote_due(deps: ServiceDeps, tenant_id: str, session_id: str) -> int:
    """Promote the oldest segments of a session whose working memory is over budget."""
    pieces = deps.short_term.pieces(tenant_id, session_id)
    due = overflow(segment(pieces, deps.settings.working), deps.settings.working)
    if not due:
        return 0
    # An event is promoted whole: pieces of it in a kept segment go with it (waiting for them
    # could hold back an event longer than the budget forever). Only the due rows are read.
    due_events = {p.event_pk for seg in due for p in seg.pieces}
    with deps.sessions() as session:
        rows = store.unpromoted_events(tenant_id, session_id, pks=due_events, session=session)
    return _promote_rows(deps, tenant_id, session_id, rows)


def promote_idle(deps: ServiceDeps) -> int:
    """Promote every session idle for ``session_idle_seconds``; returns events promoted."""
    cutoff = utcnow() - timedelta(seconds=deps.settings.session_idle_seconds)
    with deps.sessions() as session:
        idle = store.sessions_idle_since(cutoff, session=session)
    total = 0
    for row in idle:
        total += promote_session(deps, row.tenant_id, row.id)
    return total
