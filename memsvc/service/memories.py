"""Long-term memory CRUD: add (batched, deduplicated), get, list, update, delete, history."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from memsvc.errors import InvalidRequestError, NotFoundError
from memsvc.observability import metrics
from memsvc.retrieval.text import content_hash
from memsvc.schemas import (
    ListEnvelope,
    MemoryCreate,
    MemoryFilter,
    MemoryHistoryEntry,
    MemoryPublic,
    MemoryWriteResult,
    Page,
)
from memsvc.schemas.filters import All, Any_, Condition, Not
from memsvc.service import webhooks
from memsvc.service.deps import ServiceDeps
from memsvc.service.idempotency import IdempotentRequest, after_commit, record_reply
from memsvc.service.validation import (
    check_filter,
    check_metadata,
    check_text,
    decode_cursor,
    encode_cursor,
)
from stores import memories as store
from stores.db import on_commit
from stores.filters import AllOf, AnyOf, Cmp, FilterTree, NoneOf
from stores.models import MemoryRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.orm import Session

__all__ = [
    "add_memories",
    "check_items",
    "delete_memories",
    "delete_memory",
    "get_memory",
    "history_entry",
    "insert_memories",
    "list_memories",
    "memory_history",
    "restore_memory",
    "snapshot",
    "to_public",
    "to_query",
    "update_memory",
]

_UPDATABLE = ("text", "kind", "metadata", "importance", "occurred_at", "valid_from", "valid_to")


def to_public(row: MemoryRow | Row) -> MemoryPublic:
    """The API view of a row: an ORM row, or a read-only row of the same attribute names."""
    return MemoryPublic(
        id=row.id,
        text=row.text,
        kind=row.kind,
        user_id=row.user_id,
        agent_id=row.agent_id,
        session_id=row.session_id,
        metadata=row.metadata_ or {},
        importance=row.importance,
        created_at=row.created_at,
        updated_at=row.updated_at,
        occurred_at=row.occurred_at,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        content_hash=row.content_hash,
        source_event_ids=list(row.source_event_ids or []),
        strength=row.strength if row.strength is not None else 1.0,
        access_count=row.access_count or 0,
        archived_at=row.archived_at,
        episode_id=row.episode_id,
    )


def snapshot(row: MemoryRow) -> dict[str, Any]:
    """The user-visible state of a row, JSON-able, as history stores it."""
    public = to_public(row).model_dump(mode="json")
    return {
        k: public[k]
        for k in (
            "text",
            "kind",
            "metadata",
            "importance",
            "occurred_at",
            "valid_from",
            "valid_to",
            "user_id",
            "agent_id",
            "session_id",
            "source_event_ids",
            "archived_at",
        )
    }


def to_query(tenant_id: str, filters: MemoryFilter) -> store.MemoryQuery:
    kinds = filters.kind
    if isinstance(kinds, str):
        kinds = [kinds]
    return store.MemoryQuery(
        tenant_id=tenant_id,
        user_id=filters.user_id,
        agent_id=filters.agent_id,
        session_id=filters.session_id,
        kinds=tuple(kinds) if kinds else None,
        metadata=filters.metadata,
        created_after=filters.created_after,
        created_before=filters.created_before,
        occurred_after=filters.occurred_after,
        occurred_before=filters.occurred_before,
        as_of=filters.as_of,
        include_archived=filters.include_archived,
        where=_tree(filters.condition()),
    )


def _tree(condition: Condition | None) -> FilterTree | None:
    """The store's filter tree of a checked ``where`` expression."""
    if condition is None:
        return None
    if isinstance(condition, All):
        return AllOf(tuple(_tree(c) for c in condition.items))  # type: ignore[misc]
    if isinstance(condition, Any_):
        return AnyOf(tuple(_tree(c) for c in condition.items))  # type: ignore[misc]
    if isinstance(condition, Not):
        return NoneOf(_tree(condition.item))  # type: ignore[arg-type]
    return Cmp(condition.field, condition.op, condition.value, condition.key)


def _check_item(deps: ServiceDeps, item: MemoryCreate, prefix: str) -> None:
    check_text(deps.settings, item.text, f"{prefix}text")
    check_metadata(deps.settings, item.metadata, f"{prefix}metadata")
    if item.valid_from and item.valid_to and item.valid_to < item.valid_from:
        field = f"{prefix}valid_to"
        raise InvalidRequestError(f"{field} is before valid_from", field=field)


def _dedupe_key(tenant_id: str, item: MemoryCreate | MemoryRow, digest: str) -> tuple:
    # Provenance is part of identity: the same words said in two events are two memories,
    # while replaying one event (or one plain add) is a NOOP.
    sources = tuple(sorted(item.source_event_ids or ()))
    return (tenant_id, item.user_id, item.agent_id, item.session_id, item.kind, digest, sources)


def check_items(deps: ServiceDeps, items: Sequence[MemoryCreate], *, single: bool) -> None:
    """Refuse the whole batch if any item is bad (nothing is written then)."""
    if not items:
        raise InvalidRequestError("items must not be empty", field="items")
    limit = deps.settings.max_batch_size
    if len(items) > limit:
        raise InvalidRequestError(f"{len(items)} items; the limit is {limit}", field="items")
    for n, item in enumerate(items):
        _check_item(deps, item, "" if single else f"items[{n}].")


def insert_memories(
    session: Session,
    deps: ServiceDeps,
    tenant_id: str,
    items: Sequence[MemoryCreate],
    vectors: np.ndarray,
    *,
    actor: str,
) -> list[tuple[MemoryRow, str]]:
    """Write checked items inside the caller's transaction; returns (row, "ADD" | "NOOP")."""
    digests = [content_hash(item.text) for item in items]
    now = utcnow()
    top = store.reserve_revs(len(items), session=session)
    seen: dict[tuple, MemoryRow] = {
        _dedupe_key(tenant_id, row, row.content_hash): row
        for row in store.find_live_by_hash(tenant_id, digests, session=session)
    }
    # An item equal to a stored memory, or to an earlier item of the batch, is a NOOP.
    ops: list[tuple[tuple, str]] = []
    fresh: dict[tuple, dict[str, Any]] = {}
    for n, (item, digest) in enumerate(zip(items, digests, strict=True)):
        key = _dedupe_key(tenant_id, item, digest)
        if key in seen or key in fresh:
            ops.append((key, "NOOP"))
            continue
        rev = top - len(items) + 1 + n
        fresh[key] = _new_values(deps, tenant_id, item, digest, vectors[n], rev, now)
        ops.append((key, "ADD"))
    # One INSERT .. RETURNING for the batch (``id`` is its sentinel, so SQLite batches it too);
    # the rows come back as ORM objects in this session, for callers that go on changing them.
    added = store.insert_rows(list(fresh.values()), session=session)
    seen.update(zip(fresh, added, strict=True))
    record_history(
        session,
        [history_entry(tenant_id, row.id, "ADD", None, snapshot(row), actor) for row in added],
    )
    return [(seen[key], op) for key, op in ops]


def add_memories(
    deps: ServiceDeps,
    tenant_id: str,
    items: Sequence[MemoryCreate],
    *,
    actor: str,
    single: bool = False,
    idempotency: IdempotentRequest | None = None,
) -> list[MemoryWriteResult]:
    """Store a batch; an item already stored (same text, kind, scope, provenance) is a NOOP.

    Everything is validated before anything is written: one bad item rejects the batch.
    Errors name ``items[n].field``, or just ``field`` when ``single`` (one memory was sent).
    With an idempotency key, the reply is stored in the same transaction as the memories.
    """
    check_items(deps, items, single=single)
    # Embedding is the slow part: do it before the transaction, in one batch.
    vectors = deps.embedder.embed([item.text for item in items])
    with deps.sessions.begin() as session:
        results = insert_memories(session, deps, tenant_id, items, vectors, actor=actor)
        written = [
            MemoryWriteResult(**to_public(row).model_dump(), event=event) for row, event in results
        ]
        if idempotency is not None:
            reply = ListEnvelope(data=written, count=len(written))
            record_reply(session, deps, idempotency, reply)
    after_commit(deps, idempotency)
    return written


def _new_values(
    deps: ServiceDeps,
    tenant_id: str,
    item: MemoryCreate,
    digest: str,
    vector: np.ndarray,
    rev: int,
    now: datetime,
) -> dict[str, Any]:
    """The column values of a new memory row, keyed by ORM attribute."""
    return dict(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        user_id=item.user_id,
        agent_id=item.agent_id,
        session_id=item.session_id,
        kind=item.kind,
        text=item.text,
        metadata_=item.metadata,
        embedding=np.asarray(vector, dtype=np.float32).tobytes(),
        embedding_model=deps.embedder.name,
        importance=item.importance,
        valid_from=item.valid_from,
        valid_to=item.valid_to,
        content_hash=digest,
        source_event_ids=list(item.source_event_ids),
        rev=rev,
        created_at=now,
        updated_at=now,
        occurred_at=item.occurred_at or now,
    )


def record_history(session: Session, entries: Sequence[store.HistoryEntry]) -> None:
    """Write memory history rows, the webhook deliveries of those changes (the outbox, in
    the same transaction) and, once it commits, the written-memories counter. Every memory
    mutation goes through here (the API's writes and consolidation's steps)."""
    if not entries:
        return
    store.add_history(entries, session=session)
    by_tenant: dict[str, list[store.HistoryEntry]] = {}
    for entry in entries:
        by_tenant.setdefault(entry.tenant_id, []).append(entry)
    for tenant_id, own in by_tenant.items():
        webhooks.enqueue(session, tenant_id, webhooks.memory_events(own))
    ops = Counter(e.op for e in entries)

    def count() -> None:
        for op, n in ops.items():
            metrics.MEMORIES_WRITTEN.labels(op).inc(n)

    on_commit(session, count)


def history_entry(
    tenant_id: str, memory_id: str, op: str, old: Any, new: Any, actor: str
) -> store.HistoryEntry:
    return store.HistoryEntry(
        tenant_id=tenant_id,
        memory_id=memory_id,
        op=op,
        old_value=old,
        new_value=new,
        actor=actor,
        created_at=utcnow(),
    )


def get_memory(deps: ServiceDeps, tenant_id: str, memory_id: str) -> MemoryPublic:
    with deps.sessions() as session:
        row = store.get_live(tenant_id, memory_id, session=session)
    if row is None:
        raise NotFoundError(f"memory {memory_id} not found", field="memory_id")
    return to_public(row)


def list_memories(
    deps: ServiceDeps,
    tenant_id: str,
    filters: MemoryFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
    order: str = "desc",
) -> Page[MemoryPublic]:
    """One page of live memories, newest first by default; ``next_cursor`` continues it."""
    if not 1 <= limit <= 1000:
        raise InvalidRequestError("limit must be between 1 and 1000", field="limit")
    if order not in ("asc", "desc"):
        raise InvalidRequestError("order must be 'asc' or 'desc'", field="order")
    check_filter(deps.settings, filters, field="")
    after_pk = None
    if cursor:
        position = decode_cursor(cursor, {"pk": int, "order": str})
        if position["order"] != order:
            raise InvalidRequestError("cursor does not belong to this listing", field="cursor")
        after_pk = position["pk"]
    with deps.sessions() as session:
        rows = store.list_page(
            to_query(tenant_id, filters),
            limit=limit + 1,
            after_pk=after_pk,
            descending=order == "desc",
            session=session,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"pk": rows[-1].pk, "order": order}) if more else None
    return Page(data=[to_public(r) for r in rows], count=len(rows), next_cursor=next_cursor)


def update_memory(
    deps: ServiceDeps, tenant_id: str, memory_id: str, changes: dict[str, Any], *, actor: str
) -> MemoryPublic:
    """Apply the given fields (``exclude_unset`` semantics); a text change re-embeds."""
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        raise InvalidRequestError(f"cannot update {sorted(unknown)}", field=sorted(unknown)[0])
    if not changes:
        raise InvalidRequestError("nothing to update: give at least one field", field="body")
    if changes.get("text") is not None:
        check_text(deps.settings, changes["text"], "text")
    elif "text" in changes:
        raise InvalidRequestError("text must not be null", field="text")
    for name in ("kind", "importance", "occurred_at"):
        if name in changes and changes[name] is None:
            raise InvalidRequestError(f"{name} must not be null", field=name)
    if changes.get("metadata") is not None:
        check_metadata(deps.settings, changes["metadata"], "metadata")
    vector = deps.embedder.embed_query(changes["text"]) if "text" in changes else None
    with deps.sessions.begin() as session:
        rev = store.reserve_revs(1, session=session)
        row = store.get_live(tenant_id, memory_id, session=session)
        if row is None:
            raise NotFoundError(f"memory {memory_id} not found", field="memory_id")
        before = snapshot(row)
        _apply_changes(deps, row, changes, vector)
        valid_from, valid_to = row.valid_from, row.valid_to
        if valid_from and valid_to and valid_to < valid_from:
            raise InvalidRequestError("valid_to is before valid_from", field="valid_to")
        row.rev = rev
        row.updated_at = utcnow()
        record_history(
            session,
            [history_entry(tenant_id, row.id, "UPDATE", before, snapshot(row), actor)],
        )
    return to_public(row)


def _apply_changes(
    deps: ServiceDeps, row: MemoryRow, changes: dict[str, Any], vector: np.ndarray | None
) -> None:
    for name, value in changes.items():
        if name == "metadata":
            row.metadata_ = value or {}
        else:
            setattr(row, name, value)
    if vector is not None:
        row.content_hash = content_hash(row.text)
        row.embedding = np.asarray(vector, dtype=np.float32).tobytes()
        row.embedding_model = deps.embedder.name
        row.sentence_vectors = None  # they were the old text's


def delete_memory(deps: ServiceDeps, tenant_id: str, memory_id: str, *, actor: str) -> None:
    with deps.sessions.begin() as session:
        rev = store.reserve_revs(1, session=session)
        row = store.get_live(tenant_id, memory_id, session=session)
        if row is None:
            raise NotFoundError(f"memory {memory_id} not found", field="memory_id")
        store.tombstone(tenant_id, [row.pk], rev=rev, at=utcnow(), session=session)
        record_history(
            session,
            [history_entry(tenant_id, row.id, "DELETE", snapshot(row), None, actor)],
        )


def delete_memories(deps: ServiceDeps, tenant_id: str, filters: MemoryFilter, *, actor: str) -> int:
    """Delete every memory matching the filters; at least one scope id is required."""
    if not filters.has_scope():
        raise InvalidRequestError(
            "give user_id, agent_id or session_id to delete by scope", field="user_id"
        )
    check_filter(deps.settings, filters, field="")
    with deps.sessions.begin() as session:
        rev = store.reserve_revs(1, session=session)
        query = replace(to_query(tenant_id, filters), include_archived=True)
        rows = list(session.scalars(store.select_live(query)))
        if not rows:
            return 0
        now = utcnow()
        store.tombstone(tenant_id, [r.pk for r in rows], rev=rev, at=now, session=session)
        record_history(
            session,
            [history_entry(tenant_id, r.id, "DELETE", snapshot(r), None, actor) for r in rows],
        )
    return len(rows)


def memory_history(deps: ServiceDeps, tenant_id: str, memory_id: str) -> list[MemoryHistoryEntry]:
    with deps.sessions() as session:
        entries = store.history_of(tenant_id, memory_id, session=session)
    if not entries:
        raise NotFoundError(f"memory {memory_id} not found", field="memory_id")
    return [
        MemoryHistoryEntry(
            memory_id=e.memory_id,
            op=e.op,
            old_value=e.old_value,
            new_value=e.new_value,
            actor=e.actor,
            created_at=e.created_at,
        )
        for e in entries
    ]


def restore_memory(
    deps: ServiceDeps, tenant_id: str, memory_id: str, *, actor: str
) -> MemoryPublic:
    """Bring an archived memory back into default search, as strong as when it was new."""
    with deps.sessions.begin() as session:
        row = store.get_live(tenant_id, memory_id, session=session)
        if row is None:
            raise NotFoundError(f"memory {memory_id} not found", field="memory_id")
        if row.archived_at is not None:
            before = snapshot(row)
            now = utcnow()
            row.archived_at = None
            row.strength = 1.0
            row.last_accessed_at = row.updated_at = now
            record_history(
                session,
                [history_entry(tenant_id, row.id, "RESTORE", before, snapshot(row), actor)],
            )
    return to_public(row)
