"""Step *decay*: strengths follow the forgetting curve; the weak are archived, never deleted."""

from __future__ import annotations

from datetime import datetime

from memsvc.lifecycle.decay import should_archive, strength
from memsvc.service.deps import ServiceDeps
from memsvc.service.memories import history_entry, record_history, snapshot
from stores import memories as store
from stores.models import utcnow

__all__ = ["decay_memories"]

ACTOR = "system:decay"
_BATCH = 2000
_MIN_CHANGE = 0.01  # smaller moves are not worth a write


def decay_memories(
    deps: ServiceDeps,
    *,
    tenant_id: str | None = None,
    user_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """One pass over live memories (of a tenant/user, or all): update strength, archive."""
    config = deps.settings.consolidation
    now = now or utcnow()
    after, updated, archived = 0, 0, 0
    while True:
        with deps.sessions.begin() as session:
            rows = store.decay_batch(
                tenant_id=tenant_id, user_id=user_id, after_pk=after, limit=_BATCH, session=session
            )
            if not rows:
                break
            after = rows[-1].pk
            changes, weak = [], []
            for r in rows:
                value = strength(
                    last_reinforced=r.reference,
                    now=now,
                    importance=r.importance,
                    access_count=r.access_count,
                    half_life_days=config.half_life_days,
                )
                if abs(value - r.strength) >= _MIN_CHANGE:
                    changes.append((r.pk, value))
                if should_archive(
                    value,
                    importance=r.importance,
                    below=config.archive_below,
                    pinned=config.pinned_importance,
                ):
                    weak.append(r.pk)
            store.set_strengths(changes, session=session)
            history = []
            for row in store.archive_rows(weak, now, session=session):
                before = {**snapshot(row), "archived_at": None}
                history.append(
                    history_entry(row.tenant_id, row.id, "ARCHIVE", before, snapshot(row), ACTOR)
                )
            record_history(session, history)
            updated += len(changes)
            archived += len(weak)
    return {"strength_updated": updated, "archived": archived}
