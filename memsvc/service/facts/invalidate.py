"""Invalidate: a newer value of a slot closes the older fact's validity.

Bi-temporal, as Graphiti does it: the old fact is never deleted; its ``valid_to`` becomes the
time the new one was said, and the relations it stated close with it. When the "new" fact is
in fact older (an event that arrived late), it is the one born closed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from memsvc.service.facts.merge import Outcome
from memsvc.service.memories import history_entry, record_history, snapshot
from stores import graph as graph_store
from stores import memories as store
from stores.memories import HistoryEntry
from stores.models import MemoryRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["invalidate_contradicted"]


def _close(row: MemoryRow, at: datetime, actor: str, rev: int, session: Session) -> HistoryEntry:
    before = snapshot(row)
    row.valid_to = at
    row.rev = rev
    row.updated_at = utcnow()
    graph_store.close_relations_of(row.pk, at, session=session)
    return history_entry(row.tenant_id, row.id, "INVALIDATE", before, snapshot(row), actor)


def invalidate_contradicted(session: Session, outcomes: list[Outcome], *, actor: str) -> int:
    """Close every fact an added fact contradicts; returns how many were closed."""
    rev = store.reserve_revs(1, session=session)
    history = []
    for outcome in outcomes:
        new = outcome.row
        if new is None or outcome.op != "ADD" or not outcome.contradicts:
            continue
        said = outcome.candidate.valid_from
        for old in outcome.contradicts:
            if old.valid_to is not None:
                continue
            if old.valid_from is None or old.valid_from <= said:
                history.append(_close(old, said, actor, rev, session))
            elif new.valid_to is None:
                history.append(_close(new, old.valid_from, actor, rev, session))
    record_history(session, history)
    return len(history)
