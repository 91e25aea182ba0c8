"""KV cache rows (cartridges and episodic caches) and their token-hash prefixes.

Persistence only, every query tenant-scoped, the session passed in; the rules (quota,
retention, what a lookup returns) live in ``memsvc.service.kv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stores.models import KVBlobRow, KVCacheRow, KVLimitRow, KVPrefixRow, Tenant, utcnow

__all__ = [
    "add_kv",
    "blob_in_use",
    "delete_kv",
    "episodic_rows",
    "forget_blob",
    "get_kv",
    "get_limits",
    "kv_page",
    "lock_blob",
    "lock_tenant",
    "prefix_matches",
    "registered_blobs",
    "rows_for_session",
    "set_limits",
    "tail_prefixes",
    "touch",
    "unreferenced_blobs",
    "usage_bytes",
]


def lock_tenant(tenant_id: str, *, session: Session) -> None:
    """Serialise KV writers of one tenant (quota checks) until the transaction ends.

    A write that changes nothing: it takes the tenant's row lock on PostgreSQL (one that does
    not block inserts referencing the tenant) and the write lock on SQLite, where a
    ``SELECT ... FOR UPDATE`` would lock nothing and two uploads could both pass the quota."""
    stmt = update(Tenant).where(Tenant.id == tenant_id).values(name=Tenant.name)
    session.execute(stmt.execution_options(synchronize_session=False))


def lock_blob(digest: str, *, size_bytes: int | None = None, session: Session) -> None:
    """Register the blob (or touch its registry row) and hold that row until the transaction
    ends: every put and every removal of a blob happens under this lock (see KVBlobRow)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(KVBlobRow).values(sha256=digest, size_bytes=size_bytes, created_at=utcnow())
    stmt = stmt.on_conflict_do_update(
        index_elements=[KVBlobRow.sha256],
        set_={"size_bytes": func.coalesce(stmt.excluded.size_bytes, KVBlobRow.size_bytes)},
    )
    session.execute(stmt)


def forget_blob(digest: str, *, session: Session) -> None:
    """Drop the blob's registry row (its file is gone); call with the row locked."""
    session.execute(delete(KVBlobRow).where(KVBlobRow.sha256 == digest))


def unreferenced_blobs(limit: int, *, session: Session) -> list[str]:
    """Registered blobs no row (of any tenant) points at any more, oldest first."""
    used = select(KVCacheRow.id).where(KVCacheRow.blob_sha256 == KVBlobRow.sha256)
    stmt = select(KVBlobRow.sha256).where(~used.exists()).order_by(KVBlobRow.created_at)
    return list(session.scalars(stmt.limit(limit)))


def registered_blobs(digests: Sequence[str], *, session: Session) -> set[str]:
    """Those of ``digests`` that have a registry row."""
    if not digests:
        return set()
    stmt = select(KVBlobRow.sha256).where(KVBlobRow.sha256.in_(list(digests)))
    return set(session.scalars(stmt))


def add_kv(row: KVCacheRow, prefixes: Sequence[tuple[int, str]], *, session: Session) -> None:
    session.add(row)
    session.flush()
    session.add_all(
        KVPrefixRow(
            kv_id=row.id,
            tenant_id=row.tenant_id,
            model_id=row.model_id,
            prefix_hash=h,
            n_tokens=n,
        )
        for n, h in prefixes
    )


def get_kv(tenant_id: str, kv_id: str, *, session: Session) -> KVCacheRow | None:
    row = session.get(KVCacheRow, kv_id)
    return row if row is not None and row.tenant_id == tenant_id else None


def kv_page(
    tenant_id: str,
    *,
    kind: str | None = None,
    model_id: str | None = None,
    name: str | None = None,
    session_id: str | None = None,
    after_id: str | None = None,
    limit: int,
    session: Session,
) -> list[KVCacheRow]:
    stmt = select(KVCacheRow).where(KVCacheRow.tenant_id == tenant_id)
    for column, value in (
        (KVCacheRow.kind, kind),
        (KVCacheRow.model_id, model_id),
        (KVCacheRow.name, name),
        (KVCacheRow.session_id, session_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if after_id is not None:
        stmt = stmt.where(KVCacheRow.id > after_id)
    return list(session.scalars(stmt.order_by(KVCacheRow.id).limit(limit)))


def rows_for_session(
    tenant_id: str, session_id: str, episode_id: str | None, *, session: Session
) -> list[KVCacheRow]:
    stmt = select(KVCacheRow).where(
        KVCacheRow.tenant_id == tenant_id,
        KVCacheRow.kind == "episodic",
        KVCacheRow.session_id == session_id,
    )
    if episode_id is None:
        stmt = stmt.where(KVCacheRow.episode_id.is_(None))
    else:
        stmt = stmt.where(KVCacheRow.episode_id == episode_id)
    return list(session.scalars(stmt))


def delete_kv(row: KVCacheRow, *, session: Session) -> None:
    session.execute(delete(KVPrefixRow).where(KVPrefixRow.kv_id == row.id))
    session.delete(row)
    session.flush()


def blob_in_use(digest: str, *, session: Session) -> bool:
    """Whether any row (of any tenant) still points at the blob."""
    stmt = select(func.count()).select_from(KVCacheRow).where(KVCacheRow.blob_sha256 == digest)
    return bool(session.scalar(stmt))


def usage_bytes(tenant_id: str, *, kind: str | None = None, session: Session) -> int:
    stmt = select(func.coalesce(func.sum(KVCacheRow.size_bytes), 0)).where(
        KVCacheRow.tenant_id == tenant_id
    )
    if kind is not None:
        stmt = stmt.where(KVCacheRow.kind == kind)
    return int(session.scalar(stmt) or 0)


def get_limits(tenant_id: str, *, session: Session) -> KVLimitRow | None:
    return session.get(KVLimitRow, tenant_id)


def set_limits(
    tenant_id: str, quota_bytes: int | None, retention_bytes: int | None, *, session: Session
) -> None:
    row = session.get(KVLimitRow, tenant_id) or KVLimitRow(tenant_id=tenant_id)
    row.quota_bytes, row.retention_bytes = quota_bytes, retention_bytes
    session.add(row)


def prefix_matches(
    tenant_id: str, model_id: str, hashes: Sequence[str], *, session: Session
) -> list[KVPrefixRow]:
    """Recorded prefixes of this tenant and model whose hash is one of ``hashes``."""
    if not hashes:
        return []
    stmt = select(KVPrefixRow).where(
        KVPrefixRow.tenant_id == tenant_id,
        KVPrefixRow.model_id == model_id,
        KVPrefixRow.prefix_hash.in_(list(hashes)),
    )
    return list(session.scalars(stmt))


def tail_prefixes(
    tenant_id: str, model_id: str, kv_ids: Sequence[str], lo: int, hi: int, *, session: Session
) -> list[KVPrefixRow]:
    """Prefixes of these caches with ``lo < n_tokens < hi`` (their tails, between boundaries)."""
    stmt = select(KVPrefixRow).where(
        KVPrefixRow.tenant_id == tenant_id,
        KVPrefixRow.model_id == model_id,
        KVPrefixRow.n_tokens > lo,
        KVPrefixRow.n_tokens < hi,
    )
    if kv_ids:
        stmt = stmt.where(KVPrefixRow.kv_id.in_(list(kv_ids)))
    return list(session.scalars(stmt))


def touch(kv_id: str, when: datetime, *, session: Session) -> None:
    """A cache was loaded: count it and remember when (retention drops the least used)."""
    session.execute(
        update(KVCacheRow)
        .where(KVCacheRow.id == kv_id)
        .values(use_count=KVCacheRow.use_count + 1, last_used_at=when)
    )


def episodic_rows(tenant_id: str | None, *, session: Session) -> list[KVCacheRow]:
    """Every episodic cache (of one tenant, or all), oldest first."""
    stmt = select(KVCacheRow).where(KVCacheRow.kind == "episodic")
    if tenant_id is not None:
        stmt = stmt.where(KVCacheRow.tenant_id == tenant_id)
    return list(session.scalars(stmt.order_by(KVCacheRow.created_at, KVCacheRow.id)))
