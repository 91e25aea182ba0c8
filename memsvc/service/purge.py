"""Purge: erase every trace of one user, agent or session (docs/security.md, "Purge").

One transaction erases the SQL side (``stores.purge``): memory rows scrubbed to empty
tombstones, their history, events, sessions, the graph only the scope supports, jobs about
the scope, KV rows, stored idempotent replies that mention it, and writes the audit row.
After the commit: KV blobs nothing else points at are collected (under the blob registry's
lock, ``kv_blobs``; a blob another scope shares stays), working memory of the scope's sessions
is cleared (Redis or in-process), the derived indexes sync (faiss, BM25, sentence vectors,
turns drop the scrubbed rows) and the vector snapshot is rewritten, and the database is made
to drop the deleted bytes from its files (SQLite: WAL checkpoint, ``secure_delete`` is on;
PostgreSQL: ``VACUUM``, per ``MEMSVC_PURGE_VACUUM``).
"""

from __future__ import annotations

import logging
import uuid

from memsvc.schemas.purge import PurgeCounts, PurgeResult, PurgeScope
from memsvc.service.deps import ServiceDeps
from memsvc.service.exports import forget_exports
from memsvc.service.kv_blobs import collect_blob
from stores import memories as memory_store
from stores import purge as store
from stores.db import current_xid, reclaim_deleted
from stores.errors import DatabaseError
from stores.models import PurgeAuditRow, utcnow

__all__ = ["purge_scope"]

log = logging.getLogger(__name__)


def purge_scope(
    deps: ServiceDeps, tenant_id: str, kind: PurgeScope, scope_id: str, *, actor: str = ""
) -> PurgeResult:
    """Erase the scope; returns the audit record. Purging a scope with nothing left is fine
    (counts of zero): a repeated purge is harmless."""
    at = utcnow()
    with deps.sessions.begin() as session:
        # The counter first: on SQLite it takes the write lock before any read.
        rev = memory_store.reserve_revs(1, session=session)
        sessions = store.scope_sessions(tenant_id, kind, scope_id, session=session)
        memories = store.memories_in_scope(tenant_id, kind, scope_id, sessions, session=session)
        pks = [pk for pk, _ in memories]
        memory_ids = [memory_id for _, memory_id in memories]
        store.scrub_memories(tenant_id, pks, rev=rev, at=at, session=session)
        history = store.delete_history(tenant_id, memory_ids, session=session)
        entity_ids, relations = store.purge_graph(tenant_id, kind, scope_id, pks, session=session)
        event_ids = store.delete_events(tenant_id, kind, scope_id, sessions, session=session)
        session_count = store.delete_sessions(tenant_id, sessions, session=session)
        job_ids = store.delete_jobs(tenant_id, kind, scope_id, sessions, session=session)
        kv_ids, digests = store.delete_kv_rows(tenant_id, sessions, session=session)
        mentioned = [scope_id, *sessions, *memory_ids, *event_ids, *kv_ids]
        replies = store.delete_replies_mentioning(tenant_id, mentioned, session=session)
        deliveries = store.delete_deliveries_mentioning(tenant_id, mentioned, session=session)
        counts = PurgeCounts(
            memories=len(pks),
            history=history,
            events=len(event_ids),
            sessions=session_count,
            entities=len(entity_ids),
            relations=relations,
            jobs=len(job_ids),
            kv_caches=len(kv_ids),
            idempotent_replies=replies,
            webhook_deliveries=deliveries,
        )
        audit = PurgeAuditRow(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            scope_kind=kind,
            scope_sha256=store.sha256_hex(scope_id),
            actor=actor,
            counts=counts.model_dump(),
            ids={
                "memories": memory_ids,
                "events": event_ids,
                "entities": entity_ids,
                "jobs": job_ids,
                "kv_caches": kv_ids,
                "sessions_sha256": [store.sha256_hex(s) for s in sessions],
            },
            created_at=at,
        )
        store.record_audit(audit, session=session)
        xid = current_xid(session)
    forget_exports(deps, job_ids)  # archives that may hold the scope
    counts.kv_blobs_kept_shared = _collect(deps, digests)
    counts.working_memory_sessions = _clear_working_memory(
        deps, tenant_id, kind, scope_id, sessions
    )
    with deps.sessions.begin() as session:
        store.update_audit_counts(audit.id, counts.model_dump(), session=session)
    deps.sync_indexes()
    deps.indexes.save()  # the snapshot on disk no longer holds the scrubbed rows' vectors
    reclaimed = reclaim_deleted(
        deps.engine, store.PURGED_TABLES, vacuum=deps.settings.purge_vacuum, xid=xid
    )
    log.info("purged %s %s of tenant %s: %s", kind, audit.scope_sha256[:12], tenant_id, counts)
    return PurgeResult(
        audit_id=audit.id,
        scope=kind,
        scope_sha256=audit.scope_sha256,
        purged_at=at,
        counts=counts,
        reclaimed=reclaimed,
    )


def _collect(deps: ServiceDeps, digests: set[str]) -> int:
    """Collect each blob nothing points at any more; returns how many stayed (shared)."""
    kept = 0
    for digest in sorted(digests):
        try:
            if not collect_blob(deps, digest):
                kept += 1
        except (OSError, DatabaseError):  # the sweep of the decay pass collects it later
            log.warning("blob %s not collected now; the sweep will", digest, exc_info=True)
    return kept


def _clear_working_memory(
    deps: ServiceDeps, tenant_id: str, kind: PurgeScope, scope_id: str, sessions: list[str]
) -> int:
    """Clear the working memory of every session of the scope; returns how many."""
    doomed = set(sessions)
    if kind == "user":
        doomed.update(deps.short_term.sessions_of_user(tenant_id, scope_id))
    for session_id in doomed:
        deps.short_term.clear(tenant_id, session_id)
    if kind == "user":
        deps.short_term.forget_user(tenant_id, scope_id)
    return len(doomed)
