"""What the derived indexes read to load one (tenant, user) partition on demand: the newest
change (where a replica starts), a partition's live rows at a watermark, a tenant's partitions.

Beside :func:`stores.memories.changes_since` (the change feed every loaded partition follows);
always tenant-filtered.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from stores.memories import Change
from stores.models import MemoryRow

__all__ = ["head_watermark", "live_count", "partition_rows", "partition_users"]


def head_watermark(*, session: Session) -> tuple[int, int]:
    """The newest committed change as a watermark (rev, pk); (0, 0) when there is none. Revs
    commit in order, so every change at or below it is visible to this reader."""
    stmt = select(MemoryRow.rev, MemoryRow.pk).order_by(MemoryRow.rev.desc(), MemoryRow.pk.desc())
    row = session.execute(stmt.limit(1)).first()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _partition_clause(tenant_id: str, user_id: str) -> tuple[ColumnElement[bool], ...]:
    # Partition "" holds the memories without a user (user_id NULL) and with user "".
    if user_id:
        return (MemoryRow.tenant_id == tenant_id, MemoryRow.user_id == user_id)
    return (
        MemoryRow.tenant_id == tenant_id,
        or_(MemoryRow.user_id.is_(None), MemoryRow.user_id == ""),
    )


def partition_rows(
    tenant_id: str, user_id: str, watermark: tuple[int, int], *, session: Session
) -> Iterator[Change]:
    """The live memories of one (tenant, user) partition at or before ``watermark``, as
    changes (what a derived index loads a partition from; later changes come from
    :func:`changes_since`)."""
    rev, pk = watermark
    stmt = (
        select(
            MemoryRow.pk,
            MemoryRow.tenant_id,
            MemoryRow.user_id,
            MemoryRow.text,
            MemoryRow.embedding,
            MemoryRow.embedding_model,
            MemoryRow.rev,
            MemoryRow.kind,
            MemoryRow.session_id,
            MemoryRow.occurred_at,
            MemoryRow.sentence_vectors,
        )
        .where(
            *_partition_clause(tenant_id, user_id),
            MemoryRow.deleted_at.is_(None),
            (MemoryRow.rev < rev) | ((MemoryRow.rev == rev) & (MemoryRow.pk <= pk)),
        )
        .execution_options(yield_per=2000)
    )
    for pk_, tenant, user, txt, emb, model, rev_, *rest in session.execute(stmt):
        yield Change(pk_, tenant, user, txt, emb, model, False, rev_, *rest)


def partition_users(tenant_id: str, *, session: Session) -> list[str]:
    """The users of a tenant that have live memories ("" for memories without a user): its
    search partitions."""
    stmt = (
        select(MemoryRow.user_id)
        .where(MemoryRow.tenant_id == tenant_id, MemoryRow.deleted_at.is_(None))
        .distinct()
    )
    return sorted({user or "" for (user,) in session.execute(stmt)})


def live_count(*, session: Session) -> int:
    """How many live memories there are, all tenants."""
    stmt = select(func.count()).select_from(MemoryRow).where(MemoryRow.deleted_at.is_(None))
    return int(session.execute(stmt).scalar_one())
