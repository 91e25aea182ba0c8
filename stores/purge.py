"""SQL of a purge: find everything one user, agent or session left, and erase it.

Memory rows are scrubbed in place rather than deleted: the row keeps only its id, tenant,
kind and a new ``rev`` with ``deleted_at`` set, so every process's derived indexes (faiss,
BM25, turns), which follow the change feed by ``rev``, drop it like any tombstone. Everything
else the scope wrote (history, events, sessions, graph rows only it supports, jobs about it,
KV rows, stored idempotent replies that mention it) is deleted. Every statement is
tenant-filtered; the caller runs them in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from stores.models import (
    EntityRow,
    EventRow,
    IdempotencyRow,
    JobRow,
    KVCacheRow,
    MemoryEntity,
    MemoryHistory,
    MemoryRow,
    PurgeAuditRow,
    RelationRow,
    SessionRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
)

__all__ = [
    "PURGED_TABLES",
    "delete_events",
    "delete_history",
    "delete_jobs",
    "delete_kv_rows",
    "delete_replies_mentioning",
    "delete_sessions",
    "memories_in_scope",
    "purge_graph",
    "record_audit",
    "scope_sessions",
    "scrub_memories",
    "sha256_hex",
    "update_audit_counts",
]

#: The tables a purge deletes from or rewrites (what a PostgreSQL VACUUM must visit after).
PURGED_TABLES = (
    "memories",
    "memory_history",
    "memory_entities",
    "entities",
    "relations",
    "events",
    "sessions",
    "jobs",
    "kv_caches",
    "kv_prefixes",
    "idempotency_keys",
    "webhook_deliveries",
    "webhook_attempts",
)

_CHUNK = 500
_EMPTY_HASH = "0" * 64


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    items = list(items)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _scope_column(model: Any, kind: str) -> Any:
    return {"user": model.user_id, "agent": model.agent_id, "session": model.session_id}[kind]


def scope_sessions(tenant_id: str, kind: str, scope_id: str, *, session: Session) -> list[str]:
    """Every session of the scope: its sessions' rows and the sessions its events went to."""
    if kind == "session":
        return [scope_id]
    col = SessionRow.user_id if kind == "user" else SessionRow.agent_id
    found = set(
        session.scalars(
            select(SessionRow.id).where(SessionRow.tenant_id == tenant_id, col == scope_id)
        )
    )
    found.update(
        session.scalars(
            select(EventRow.session_id)
            .where(EventRow.tenant_id == tenant_id, _scope_column(EventRow, kind) == scope_id)
            .distinct()
        )
    )
    return sorted(found)


def memories_in_scope(
    tenant_id: str, kind: str, scope_id: str, sessions: Sequence[str], *, session: Session
) -> list[tuple[int, str]]:
    """(pk, id) of every memory row of the scope, live or tombstoned, or of its sessions."""
    found: dict[int, str] = {}
    own = _scope_column(MemoryRow, kind) == scope_id
    for pk, memory_id in session.execute(
        select(MemoryRow.pk, MemoryRow.id).where(MemoryRow.tenant_id == tenant_id, own)
    ):
        found[pk] = memory_id
    for chunk in _chunks(sessions):
        stmt = select(MemoryRow.pk, MemoryRow.id).where(
            MemoryRow.tenant_id == tenant_id, MemoryRow.session_id.in_(chunk)
        )
        found.update({pk: memory_id for pk, memory_id in session.execute(stmt)})
    return sorted(found.items())


def scrub_memories(
    tenant_id: str, pks: Sequence[int], *, rev: int, at: datetime, session: Session
) -> None:
    """Empty the rows and mark them deleted at ``rev`` (the indexes drop them on sync)."""
    for chunk in _chunks(pks):
        session.execute(
            update(MemoryRow)
            .where(MemoryRow.tenant_id == tenant_id, MemoryRow.pk.in_(chunk))
            .values(
                text="",
                metadata_={},
                embedding=None,
                sentence_vectors=None,
                user_id=None,
                agent_id=None,
                session_id=None,
                slot=None,
                episode_id=None,
                source_event_ids=[],
                content_hash=_EMPTY_HASH,
                valid_from=None,
                valid_to=None,
                deleted_at=at,
                archived_at=None,
                updated_at=at,
                rev=rev,
            )
        )


def delete_history(tenant_id: str, memory_ids: Sequence[str], *, session: Session) -> int:
    """Delete every history row (old and new values) of the memories."""
    deleted = 0
    for chunk in _chunks(memory_ids):
        result = session.execute(
            delete(MemoryHistory).where(
                MemoryHistory.tenant_id == tenant_id, MemoryHistory.memory_id.in_(chunk)
            )
        )
        deleted += result.rowcount or 0
    return deleted


def delete_events(
    tenant_id: str, kind: str, scope_id: str, sessions: Sequence[str], *, session: Session
) -> list[str]:
    """Delete the scope's events (its own and those of its sessions); returns their ids."""
    own = _scope_column(EventRow, kind) == scope_id
    clauses = [own]
    for chunk in _chunks(sessions):
        clauses.append(EventRow.session_id.in_(chunk))
    where = and_(EventRow.tenant_id == tenant_id, or_(*clauses))
    ids = list(session.scalars(select(EventRow.id).where(where)))
    session.execute(delete(EventRow).where(where))
    return ids


def delete_sessions(tenant_id: str, sessions: Sequence[str], *, session: Session) -> int:
    deleted = 0
    for chunk in _chunks(sessions):
        result = session.execute(
            delete(SessionRow).where(SessionRow.tenant_id == tenant_id, SessionRow.id.in_(chunk))
        )
        deleted += result.rowcount or 0
    return deleted


def purge_graph(
    tenant_id: str, kind: str, scope_id: str, memory_pks: Sequence[int], *, session: Session
) -> tuple[list[str], int]:
    """Delete the graph only the purged memories support; returns (entity ids, relations).

    A user's purge deletes the user's whole graph partition. Otherwise the relations the
    purged memories state go, and then each entity they mentioned that nothing else mentions
    and no remaining relation touches; an entity another memory still mentions stays."""
    candidates: set[int] = set()
    relations = 0
    for chunk in _chunks(memory_pks):
        candidates.update(
            session.scalars(select(MemoryEntity.entity_pk).where(MemoryEntity.memory_pk.in_(chunk)))
        )
        session.execute(delete(MemoryEntity).where(MemoryEntity.memory_pk.in_(chunk)))
        stmt = delete(RelationRow).where(
            RelationRow.tenant_id == tenant_id, RelationRow.memory_pk.in_(chunk)
        )
        relations += session.execute(stmt).rowcount or 0
    doomed: set[int] = set()
    if kind == "user":
        doomed.update(
            session.scalars(
                select(EntityRow.pk).where(
                    EntityRow.tenant_id == tenant_id, EntityRow.user_id == scope_id
                )
            )
        )
    for chunk in _chunks(candidates - doomed):
        linked = set(
            session.scalars(select(MemoryEntity.entity_pk).where(MemoryEntity.entity_pk.in_(chunk)))
        )
        related = set(
            session.scalars(select(RelationRow.source_pk).where(RelationRow.source_pk.in_(chunk)))
        ) | set(
            session.scalars(select(RelationRow.target_pk).where(RelationRow.target_pk.in_(chunk)))
        )
        doomed.update(set(chunk) - linked - related)
    entity_ids: list[str] = []
    for chunk in _chunks(doomed):
        entity_ids += session.scalars(
            select(EntityRow.id).where(EntityRow.tenant_id == tenant_id, EntityRow.pk.in_(chunk))
        )
        touching = or_(RelationRow.source_pk.in_(chunk), RelationRow.target_pk.in_(chunk))
        relations += session.execute(delete(RelationRow).where(touching)).rowcount or 0
        session.execute(delete(MemoryEntity).where(MemoryEntity.entity_pk.in_(chunk)))
        session.execute(
            delete(EntityRow).where(EntityRow.tenant_id == tenant_id, EntityRow.pk.in_(chunk))
        )
    if kind == "user":  # relations stored in the user's partition, whatever they point at
        stmt = delete(RelationRow).where(
            RelationRow.tenant_id == tenant_id, RelationRow.user_id == scope_id
        )
        relations += session.execute(stmt).rowcount or 0
    return sorted(entity_ids), relations


def delete_jobs(
    tenant_id: str, kind: str, scope_id: str, sessions: Sequence[str], *, session: Session
) -> list[str]:
    """Delete the jobs whose scope names the purged scope or one of its sessions, and the
    export jobs whose archive may hold it: whole-tenant exports, the user's own, and (for an
    agent or session) every export of the tenant. The caller removes their archives."""
    session_set = set(sessions)
    key = f"{kind}_id"

    def doomed_job(job_kind: str, scope: Any) -> bool:
        scope = scope if isinstance(scope, dict) else {}
        if job_kind == "export":
            return kind != "user" or scope.get("user_id") in (None, scope_id)
        return scope.get(key) == scope_id or scope.get("session_id") in session_set

    doomed = [
        job_id
        for job_id, job_kind, scope in session.execute(
            select(JobRow.id, JobRow.kind, JobRow.scope).where(JobRow.tenant_id == tenant_id)
        )
        if doomed_job(job_kind, scope)
    ]
    for chunk in _chunks(doomed):
        session.execute(delete(JobRow).where(JobRow.tenant_id == tenant_id, JobRow.id.in_(chunk)))
    return doomed


def delete_kv_rows(
    tenant_id: str, sessions: Sequence[str], *, session: Session
) -> tuple[list[str], set[str]]:
    """Delete the KV caches stored for the sessions; returns (their ids, their blobs'
    digests) — the caller collects each blob nothing else points at after the commit."""
    ids: list[str] = []
    digests: set[str] = set()
    for chunk in _chunks(sessions):
        where = and_(KVCacheRow.tenant_id == tenant_id, KVCacheRow.session_id.in_(chunk))
        for kv_id, digest in session.execute(
            select(KVCacheRow.id, KVCacheRow.blob_sha256).where(where)
        ):
            ids.append(kv_id)
            digests.add(digest)
        session.execute(delete(KVCacheRow).where(where))  # prefixes go by ON DELETE CASCADE
    return ids, digests


def _needles(values: Iterable[str]) -> list[bytes]:
    """Each value as it may appear in a stored JSON reply: raw and JSON-escaped."""
    out: set[bytes] = set()
    for value in values:
        if value:
            out.add(value.encode())
            out.add(json.dumps(value)[1:-1].encode())
    return sorted(out)


def delete_replies_mentioning(tenant_id: str, values: Iterable[str], *, session: Session) -> int:
    """Delete the tenant's stored idempotent replies whose body names any of ``values`` (the
    purged ids, the scope's id and sessions): a retry then runs as a new request."""
    needles = _needles(values)
    if not needles:
        return 0
    doomed = []
    stmt = select(IdempotencyRow.key, IdempotencyRow.body).where(
        IdempotencyRow.scope == tenant_id, IdempotencyRow.body.is_not(None)
    )
    for key, body in session.execute(stmt):
        if any(needle in body for needle in needles):
            doomed.append(key)
    for chunk in _chunks(doomed):
        session.execute(
            delete(IdempotencyRow).where(
                IdempotencyRow.scope == tenant_id, IdempotencyRow.key.in_(chunk)
            )
        )
    return len(doomed)


def delete_deliveries_mentioning(tenant_id: str, values: Iterable[str], *, session: Session) -> int:
    """Delete the tenant's webhook deliveries (sent or pending, with their attempts) whose
    body names any of ``values``: a memory event's body holds the memory's text."""
    needles = _needles(values)
    if not needles:
        return 0
    stmt = select(WebhookDeliveryRow.id, WebhookDeliveryRow.body).where(
        WebhookDeliveryRow.tenant_id == tenant_id
    )
    doomed = [
        delivery_id
        for delivery_id, body in session.execute(stmt)
        if any(needle in body.encode() for needle in needles)
    ]
    for chunk in _chunks(doomed):
        session.execute(delete(WebhookAttemptRow).where(WebhookAttemptRow.delivery_id.in_(chunk)))
        session.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.id.in_(chunk)))
    return len(doomed)


def record_audit(row: PurgeAuditRow, *, session: Session) -> None:
    session.add(row)


def update_audit_counts(audit_id: str, counts: dict[str, Any], *, session: Session) -> None:
    """Complete the audit with what happened after the commit (blobs, working memory)."""
    session.execute(update(PurgeAuditRow).where(PurgeAuditRow.id == audit_id).values(counts=counts))
