"""Memory rows, their history and the change counter. Persistence only: no business rules.

Every function takes the session keyword-only and never commits; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, defer

from stores.filters import FilterTree, filter_clause
from stores.json_match import json_key_equals
from stores.models import MemoryHistory, MemoryRow

__all__ = [
    "Change",
    "HistoryEntry",
    "MemoryQuery",
    "add_history",
    "archive_rows",
    "candidate_pks",
    "changes_since",
    "count_live",
    "current_rev",
    "decay_batch",
    "find_live_by_hash",
    "get_live",
    "history_of",
    "ids_by_pks",
    "insert_rows",
    "list_page",
    "live_rows_upto",
    "messages_without_sentences",
    "open_slot_facts",
    "record_access",
    "reserve_revs",
    "result_rows_by_pks",
    "rows_by_pks",
    "select_live",
    "set_strengths",
    "tombstone",
]


@dataclass(frozen=True)
class MemoryQuery:
    """Row filters; every given field must match. ``metadata`` is equality on scalar values."""

    tenant_id: str
    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    kinds: tuple[str, ...] | None = None
    metadata: dict[str, Any] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None
    # Archived (decayed) memories are left out unless asked for.
    include_archived: bool = False
    # Only memories valid at this time: valid_from <= as_of < valid_to (NULL = unbounded).
    as_of: datetime | None = None
    # A boolean filter tree (stores.filters), ANDed with the fields above.
    where: FilterTree | None = None


def _metadata_clause(key: str, value: Any) -> ColumnElement[bool]:
    if value is None:  # the key is missing or null
        return MemoryRow.metadata_[key].as_string().is_(None)
    return json_key_equals(MemoryRow.metadata_, key, value)


def _where(query: MemoryQuery) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [
        MemoryRow.tenant_id == query.tenant_id,
        MemoryRow.deleted_at.is_(None),
    ]
    for column, value in (
        (MemoryRow.user_id, query.user_id),
        (MemoryRow.agent_id, query.agent_id),
        (MemoryRow.session_id, query.session_id),
    ):
        if value is not None:
            clauses.append(column == value)
    if query.kinds:
        clauses.append(MemoryRow.kind.in_(query.kinds))
    for key, value in (query.metadata or {}).items():
        clauses.append(_metadata_clause(key, value))
    if query.created_after is not None:
        clauses.append(MemoryRow.created_at >= query.created_after)
    if query.created_before is not None:
        clauses.append(MemoryRow.created_at < query.created_before)
    if query.occurred_after is not None:
        clauses.append(MemoryRow.occurred_at >= query.occurred_after)
    if query.occurred_before is not None:
        clauses.append(MemoryRow.occurred_at < query.occurred_before)
    if not query.include_archived:
        clauses.append(MemoryRow.archived_at.is_(None))
    if query.as_of is not None:
        clauses.append(or_(MemoryRow.valid_from.is_(None), MemoryRow.valid_from <= query.as_of))
        clauses.append(or_(MemoryRow.valid_to.is_(None), MemoryRow.valid_to > query.as_of))
    if query.where is not None:
        clauses.append(filter_clause(query.where))
    return clauses


def select_live(query: MemoryQuery) -> Select[tuple[MemoryRow]]:
    """Live (not deleted) rows matching ``query``."""
    return select(MemoryRow).where(and_(*_where(query)))


def reserve_revs(n: int, *, session: Session) -> int:
    """Take ``n`` change-counter values; returns the highest (the range is ``top-n+1 .. top``).

    The counter row stays locked until the transaction ends, so revs are handed out in commit
    order: a reader that has seen rev r has seen every committed rev below it. Call it first in
    a write transaction (on SQLite that takes the write lock before any read).
    """
    stmt = text("UPDATE counters SET value = value + :n WHERE name = 'memory_rev' RETURNING value")
    return int(session.execute(stmt, {"n": n}).scalar_one())


def get_live(tenant_id: str, memory_id: str, *, session: Session) -> MemoryRow | None:
    stmt = select(MemoryRow).where(
        MemoryRow.tenant_id == tenant_id,
        MemoryRow.id == memory_id,
        MemoryRow.deleted_at.is_(None),
    )
    return session.scalars(stmt).first()


def find_live_by_hash(
    tenant_id: str, hashes: Sequence[str], *, session: Session
) -> list[MemoryRow]:
    """Live rows of the tenant with any of the content ``hashes``."""
    if not hashes:
        return []
    stmt = select(MemoryRow).where(
        MemoryRow.tenant_id == tenant_id,
        MemoryRow.content_hash.in_(set(hashes)),
        MemoryRow.deleted_at.is_(None),
    )
    return list(session.scalars(stmt))


def list_page(
    query: MemoryQuery, *, limit: int, after_pk: int | None, descending: bool, session: Session
) -> list[MemoryRow]:
    """Up to ``limit`` rows after the cursor position, ordered by insertion."""
    stmt = select_live(query)
    if after_pk is not None:
        stmt = stmt.where(MemoryRow.pk < after_pk if descending else MemoryRow.pk > after_pk)
    order = MemoryRow.pk.desc() if descending else MemoryRow.pk.asc()
    return list(session.scalars(stmt.order_by(order).limit(limit)))


def candidate_pks(query: MemoryQuery, *, session: Session) -> list[tuple[int, str | None]]:
    """``(pk, user_id)`` of every live row matching ``query`` (to restrict a vector search)."""
    stmt = select(MemoryRow.pk, MemoryRow.user_id).where(and_(*_where(query)))
    return [(int(pk), user) for pk, user in session.execute(stmt)]


def _live_by_pks(tenant_id: str, pks: Sequence[int]) -> tuple[ColumnElement[bool], ...]:
    return (
        MemoryRow.tenant_id == tenant_id,
        MemoryRow.pk.in_(list(pks)),
        MemoryRow.deleted_at.is_(None),
    )


def rows_by_pks(tenant_id: str, pks: Sequence[int], *, session: Session) -> dict[int, MemoryRow]:
    """Live rows of a tenant by pk. The whole-text embedding is not read (search and the
    sentences step never need it; it would be loaded on access inside the session)."""
    if not pks:
        return {}
    stmt = (
        select(MemoryRow).options(defer(MemoryRow.embedding)).where(*_live_by_pks(tenant_id, pks))
    )
    return {row.pk: row for row in session.scalars(stmt)}


# A search result's view of a row: every mapped column but the whole-text embedding, read as
# plain rows keyed by ORM attribute (``metadata_``): building ORM objects for the hundred rows
# of a deep search cost as much again as reading them.
_RESULT_COLUMNS = tuple(
    getattr(MemoryRow, attr.key)
    for attr in inspect(MemoryRow).column_attrs
    if attr.key != "embedding"
)


def result_rows_by_pks(tenant_id: str, pks: Sequence[int], *, session: Session) -> dict[int, Row]:
    """Live rows of a tenant by pk, read only: named tuples with the attributes of
    :class:`MemoryRow`, the whole-text embedding left out."""
    if not pks:
        return {}
    stmt = select(*_RESULT_COLUMNS).where(*_live_by_pks(tenant_id, pks))
    return {row.pk: row for row in session.execute(stmt)}


@dataclass(frozen=True)
class Change:
    """What a derived index needs to know about one changed memory."""

    pk: int
    tenant_id: str
    user_id: str | None
    text: str
    embedding: bytes | None
    embedding_model: str
    deleted: bool
    rev: int
    kind: str = "fact"
    session_id: str | None = None
    occurred_at: datetime | None = None
    sentence_vectors: bytes | None = None


def changes_since(watermark: tuple[int, int], *, limit: int, session: Session) -> list[Change]:
    """Rows written after ``watermark`` = (rev, pk), tombstones included, oldest change first.

    One transaction may stamp many rows with the same rev; the pk half of the watermark lets a
    caller page through them without skipping any.
    """
    w_rev, w_pk = watermark
    stmt = (
        select(
            MemoryRow.pk,
            MemoryRow.tenant_id,
            MemoryRow.user_id,
            MemoryRow.text,
            MemoryRow.embedding,
            MemoryRow.embedding_model,
            MemoryRow.deleted_at,
            MemoryRow.rev,
            MemoryRow.kind,
            MemoryRow.session_id,
            MemoryRow.occurred_at,
            MemoryRow.sentence_vectors,
        )
        # The redundant ``rev >= w_rev`` lets SQLite seek the rev index; with the OR alone it
        # scans the whole index (4.4 ms at 100k memories, on every search's sync).
        .where(
            MemoryRow.rev >= w_rev,
            or_(MemoryRow.rev > w_rev, and_(MemoryRow.rev == w_rev, MemoryRow.pk > w_pk)),
        )
        .order_by(MemoryRow.rev, MemoryRow.pk)
        .limit(limit)
    )
    return [
        Change(pk, tenant, user, txt, emb, model, deleted is not None, rev, *rest)
        for pk, tenant, user, txt, emb, model, deleted, rev, *rest in session.execute(stmt)
    ]


def live_rows_upto(watermark: tuple[int, int], *, session: Session) -> Iterator[Row]:
    """Every live row at or before ``watermark`` = (rev, pk), all tenants: what the derived
    indexes rebuild from at start-up (pk, tenant, user, text, kind, session, event time,
    sentence vectors and their embedding model)."""
    rev, pk = watermark
    stmt = select(
        MemoryRow.pk,
        MemoryRow.tenant_id,
        MemoryRow.user_id,
        MemoryRow.text,
        MemoryRow.kind,
        MemoryRow.session_id,
        MemoryRow.occurred_at,
        MemoryRow.sentence_vectors,
        MemoryRow.embedding_model,
    ).where(
        MemoryRow.deleted_at.is_(None),
        (MemoryRow.rev < rev) | ((MemoryRow.rev == rev) & (MemoryRow.pk <= pk)),
    )
    yield from session.execute(stmt)


def ids_by_pks(tenant_id: str, pks: Iterable[int], *, session: Session) -> dict[int, str]:
    """The public ids of the tenant's memories among ``pks`` (deleted ones included)."""
    pks = list(pks)
    if not pks:
        return {}
    stmt = select(MemoryRow.pk, MemoryRow.id).where(
        MemoryRow.tenant_id == tenant_id, MemoryRow.pk.in_(pks)
    )
    return {pk: memory_id for pk, memory_id in session.execute(stmt)}


def current_rev(*, session: Session) -> int:
    """The last rev handed out (committed or not yet)."""
    stmt = text("SELECT value FROM counters WHERE name = 'memory_rev'")
    return int(session.execute(stmt).scalar_one())


def tombstone(
    tenant_id: str, pks: Sequence[int], *, rev: int, at: datetime, session: Session
) -> None:
    """Mark rows deleted (kept as tombstones so derived indexes drop them too)."""
    session.execute(
        update(MemoryRow)
        .where(MemoryRow.tenant_id == tenant_id, MemoryRow.pk.in_(list(pks)))
        .values(deleted_at=at, rev=rev, updated_at=at)
    )


@dataclass(frozen=True)
class HistoryEntry:
    """One mutation to record (a ``memory_history`` row, written in bulk by add_history)."""

    tenant_id: str
    memory_id: str
    op: str
    old_value: dict[str, Any] | None
    new_value: dict[str, Any] | None
    actor: str
    created_at: datetime


def insert_rows(values: Sequence[dict[str, Any]], *, session: Session) -> list[MemoryRow]:
    """Insert memory rows (column values keyed by ORM attribute) in one batched
    INSERT .. RETURNING; returns them as ORM objects of ``session``, in the order given."""
    if not values:
        return []
    stmt = insert(MemoryRow).returning(MemoryRow, sort_by_parameter_order=True)
    # render_nulls: rows whose None keys differ (user_id set or not) still share one statement.
    options = {"render_nulls": True}
    return list(session.scalars(stmt, list(values), execution_options=options))


def add_history(entries: Sequence[HistoryEntry], *, session: Session) -> None:
    """Insert history rows in one executemany, in the order given (no ORM objects: a batch
    of memories writes as many history rows, and instrumented objects cost more than SQL)."""
    if entries:
        session.execute(insert(MemoryHistory), [vars(e) for e in entries])


def history_of(tenant_id: str, memory_id: str, *, session: Session) -> list[MemoryHistory]:
    stmt = (
        select(MemoryHistory)
        .where(MemoryHistory.tenant_id == tenant_id, MemoryHistory.memory_id == memory_id)
        .order_by(MemoryHistory.pk)
    )
    return list(session.scalars(stmt))


def count_live(query: MemoryQuery, *, session: Session) -> int:
    stmt = select(func.count()).select_from(MemoryRow).where(and_(*_where(query)))
    return int(session.execute(stmt).scalar_one())


def open_slot_facts(
    tenant_id: str,
    user_id: str | None,
    slots: Sequence[str],
    *,
    session: Session,
) -> list[MemoryRow]:
    """Live memories of the user holding one of ``slots`` whose validity is still open."""
    if not slots:
        return []
    stmt = select(MemoryRow).where(
        MemoryRow.tenant_id == tenant_id,
        MemoryRow.user_id.is_(None) if user_id is None else MemoryRow.user_id == user_id,
        MemoryRow.slot.in_(list(set(slots))),
        MemoryRow.deleted_at.is_(None),
        MemoryRow.valid_to.is_(None),
    )
    return list(session.scalars(stmt.order_by(MemoryRow.pk)))


def record_access(counts: dict[str, int], at: datetime, *, session: Session) -> None:
    """Add retrievals (by memory id) to ``access_count`` and stamp ``last_accessed_at``.

    No rev is taken: no derived index depends on these columns.
    """
    if not counts:
        return
    stmt = (
        update(MemoryRow)
        .where(MemoryRow.id == bindparam("b_id"))
        .values(access_count=MemoryRow.access_count + bindparam("b_n"), last_accessed_at=at)
    )
    session.connection().execute(
        stmt, [{"b_id": memory_id, "b_n": n} for memory_id, n in sorted(counts.items())]
    )


@dataclass(frozen=True)
class DecayRow:
    pk: int
    tenant_id: str
    importance: float
    access_count: int
    reference: datetime  # last reinforcement: last access, else creation
    strength: float


def decay_batch(
    *, tenant_id: str | None, user_id: str | None, after_pk: int, limit: int, session: Session
) -> list[DecayRow]:
    """Live, unarchived memories after ``after_pk`` (in pk order), with what decay needs."""
    stmt = select(
        MemoryRow.pk,
        MemoryRow.tenant_id,
        MemoryRow.importance,
        MemoryRow.access_count,
        MemoryRow.created_at,
        MemoryRow.last_accessed_at,
        MemoryRow.strength,
    ).where(
        MemoryRow.pk > after_pk,
        MemoryRow.deleted_at.is_(None),
        MemoryRow.archived_at.is_(None),
    )
    if tenant_id is not None:
        stmt = stmt.where(MemoryRow.tenant_id == tenant_id)
    if user_id is not None:
        stmt = stmt.where(MemoryRow.user_id == user_id)
    return [
        DecayRow(pk, tenant, importance, count or 0, accessed or created, strength)
        for pk, tenant, importance, count, created, accessed, strength in session.execute(
            stmt.order_by(MemoryRow.pk).limit(limit)
        )
    ]


def set_strengths(values: Sequence[tuple[int, float]], *, session: Session) -> None:
    if not values:
        return
    stmt = (
        update(MemoryRow)
        .where(MemoryRow.pk == bindparam("b_pk"))
        .values(strength=bindparam("b_strength"))
    )
    session.connection().execute(stmt, [{"b_pk": pk, "b_strength": s} for pk, s in values])


def archive_rows(pks: Sequence[int], at: datetime, *, session: Session) -> list[MemoryRow]:
    """Mark rows archived; returns them (their history is the caller's)."""
    if not pks:
        return []
    rows = list(session.scalars(select(MemoryRow).where(MemoryRow.pk.in_(list(pks)))))
    for row in rows:
        row.archived_at = at
    return rows


def messages_without_sentences(
    tenant_id: str, session_id: str, *, limit: int, session: Session
) -> list[MemoryRow]:
    """Live message memories of a session whose sentences were not embedded yet."""
    stmt = (
        select(MemoryRow)
        .where(
            MemoryRow.tenant_id == tenant_id,
            MemoryRow.session_id == session_id,
            MemoryRow.kind == "message",
            MemoryRow.sentence_vectors.is_(None),
            MemoryRow.deleted_at.is_(None),
        )
        .order_by(MemoryRow.pk)
        .limit(limit)
    )
    return list(session.scalars(stmt))
