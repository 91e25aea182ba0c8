"""KV memory: store, list, fetch and delete KV containers; find the longest stored prefix.

Containers (``kv_cartridges.format``) arrive as files (an upload streamed to disk, or a
container the service built) and are verified before anything is written. The blob store keeps
the file under its sha256; SQL keeps the row (tenant-scoped) and the token-hash prefixes
lookup uses. A rejected request changes nothing: every check runs before the transaction, the
quota check inside it under the tenant's row lock, and the file is moved in last.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from kv_cartridges.format import KVContainer, read_container
from kv_cartridges.manifest import Manifest
from memsvc.errors import InvalidRequestError, NotFoundError
from memsvc.schemas import KVKind, KVPublic, Page
from memsvc.schemas.kv import KVLimitsPublic
from memsvc.service.deps import ServiceDeps
from memsvc.service.kv_blobs import put_blob, release_blobs
from memsvc.service.kv_checks import Checked, Spec, check_file, container_limits, resolve_spec
from memsvc.service.validation import check_metadata, decode_cursor, encode_cursor
from stores import kv as store
from stores import tenants as tenant_store
from stores.errors import DatabaseError
from stores.models import KVCacheRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "KVContent",
    "bits_per_elem",
    "container_limits",
    "delete_kv",
    "get_kv",
    "kv_public",
    "list_kv",
    "load_container",
    "open_content",
    "resolve_spec",
    "save_cartridge",
    "save_session_kv",
    "set_limits",
    "store_file",
]

log = logging.getLogger(__name__)


def kv_public(row: KVCacheRow) -> KVPublic:
    return KVPublic(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]
        name=row.name,
        model_id=row.model_id,
        model=row.model,
        codec=row.codec,
        dtype=row.dtype,
        n_tokens=row.n_tokens,
        start_position=row.start_position,
        bits_per_elem=row.bits_per_elem,
        origin=row.origin,
        session_id=row.session_id,
        episode_id=row.episode_id,
        corpus_id=row.corpus_id,
        metadata=row.metadata_ or {},
        sha256=row.blob_sha256,
        payload_sha256=row.payload_sha256,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        use_count=row.use_count,
    )


def bits_per_elem(m: Manifest, size_bytes: int) -> float:
    """Stored bits per K/V element, every byte of the file counted."""
    numel = 2 * m.model.num_layers * m.batch * m.model.num_kv_heads * m.n_tokens * m.model.head_dim
    return 8 * size_bytes / max(numel, 1)


def _check_id(value: str | None, field: str) -> str | None:
    if value is not None and not 1 <= len(value) <= 200:
        raise InvalidRequestError(f"{field} must be 1-200 characters", field=field)
    return value


def _quota(deps: ServiceDeps, tenant_id: str, session: Any) -> int:
    limits = store.get_limits(tenant_id, session=session)
    if limits is not None and limits.quota_bytes is not None:
        return limits.quota_bytes
    return deps.settings.kv.quota_bytes


def _new_row(tenant_id: str, c: Checked, kind: KVKind, **fields: Any) -> KVCacheRow:
    m = c.manifest
    corpus_id = m.origin.get("corpus_id")
    corpus_id = None if corpus_id is None else _check_id(str(corpus_id), "origin.corpus_id")
    return KVCacheRow(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        kind=kind,
        model_id=m.model_id,
        model=m.model.to_dict(),
        codec=m.codec,
        dtype=m.dtype,
        n_tokens=m.n_tokens,
        start_position=m.start_position,
        bits_per_elem=bits_per_elem(m, c.size),
        origin=m.origin,
        corpus_id=corpus_id,
        blob_sha256=c.digest,
        payload_sha256=m.payload_sha256,
        size_bytes=c.size,
        created_at=utcnow(),
        use_count=0,
        **fields,
    )


def _commit(deps: ServiceDeps, row: KVCacheRow, c: Checked) -> list[str]:
    """One transaction: the quota under the tenant's lock, the replaced episodic rows out, the
    row in, the blob put last (under its registry lock). Returns the replaced rows' blobs."""
    prefixes = c.manifest.boundaries() if c.manifest.start_position == 0 else []
    with deps.sessions.begin() as session:
        store.lock_tenant(row.tenant_id, session=session)
        replaced = (
            store.rows_for_session(row.tenant_id, row.session_id, row.episode_id, session=session)
            if row.kind == "episodic" and row.session_id is not None
            else []
        )
        used = store.usage_bytes(row.tenant_id, session=session)
        used -= sum(r.size_bytes for r in replaced)
        quota = _quota(deps, row.tenant_id, session)
        if used + c.size > quota:
            raise InvalidRequestError(
                f"KV storage quota exceeded: {used} bytes used + {c.size} > {quota}",
                field="content",
                code="quota_exceeded",
                status_code=413,
            )
        for r in replaced:
            store.delete_kv(r, session=session)
        store.add_kv(row, prefixes, session=session)
        put_blob(deps, c.path, c.digest, c.size, session=session)
    return [r.blob_sha256 for r in replaced]


def store_file(
    deps: ServiceDeps,
    tenant_id: str,
    path: Path,
    *,
    kind: KVKind,
    name: str | None = None,
    session_id: str | None = None,
    episode_id: str | None = None,
    spec: Spec | None = None,
    metadata: dict[str, Any] | None = None,
    digest: str | None = None,
) -> KVPublic:
    """Verify a container file and store it (the file is consumed: moved in or removed).

    ``kind="episodic"`` replaces the session's (and episode's) previous cache. ``spec``
    compresses a raw container server-side. ``digest``: the file's sha256 when already known.
    """
    cleanup = [path]
    try:
        metadata = check_metadata(deps.settings, metadata or {}, "metadata")
        for field, value in (
            ("name", name),
            ("session_id", session_id),
            ("episode_id", episode_id),
        ):
            _check_id(value, field)
        c = check_file(
            deps,
            path,
            kind=kind,
            session_id=session_id,
            episode_id=episode_id,
            spec=spec,
            digest=digest,
            cleanup=cleanup,
        )
        row = _new_row(tenant_id, c, kind, name=name, session_id=session_id,
                       episode_id=episode_id, metadata_=metadata)  # fmt: skip
        try:
            replaced = _commit(deps, row, c)
        except DatabaseError:
            release_blobs(deps, [c.digest])  # put in by a transaction that did not commit
            raise
        release_blobs(deps, replaced)
        return kv_public(row)
    finally:
        for p in cleanup:
            p.unlink(missing_ok=True)


def _write_tmp(deps: ServiceDeps, container: KVContainer) -> tuple[Path, str]:
    path = deps.blobs.new_tmp_file()
    try:
        return path, container.write(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def save_cartridge(
    deps: ServiceDeps,
    tenant_id: str,
    container: KVContainer,
    *,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> KVPublic:
    """Store a trained cartridge (origin ``{"kind": "cartridge", "corpus_id": ...}``)."""
    path, digest = _write_tmp(deps, container)
    return store_file(
        deps, tenant_id, path, kind="cartridge", name=name, metadata=metadata, digest=digest
    )


def save_session_kv(
    deps: ServiceDeps,
    tenant_id: str,
    session_id: str,
    container: KVContainer,
    *,
    episode_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> KVPublic:
    """Store (replace) the episodic KV cache of a session or one of its episodes."""
    path, digest = _write_tmp(deps, container)
    return store_file(
        deps,
        tenant_id,
        path,
        kind="episodic",
        session_id=session_id,
        episode_id=episode_id,
        metadata=metadata,
        digest=digest,
    )


def _row(deps: ServiceDeps, tenant_id: str, kv_id: str, kind: KVKind | None, session: Any):
    row = store.get_kv(tenant_id, kv_id, session=session)
    if row is None or (kind is not None and row.kind != kind):
        what = "cartridge" if kind == "cartridge" else "KV cache"
        raise NotFoundError(f"{what} {kv_id} not found", field="id")
    return row


def get_kv(
    deps: ServiceDeps, tenant_id: str, kv_id: str, *, kind: KVKind | None = None
) -> KVPublic:
    with deps.sessions() as session:
        return kv_public(_row(deps, tenant_id, kv_id, kind, session))


def list_kv(
    deps: ServiceDeps,
    tenant_id: str,
    *,
    kind: KVKind | None = None,
    model_id: str | None = None,
    name: str | None = None,
    session_id: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[KVPublic]:
    if not 1 <= limit <= 1000:
        raise InvalidRequestError("limit must be between 1 and 1000", field="limit")
    after = decode_cursor(cursor, {"kv": str})["kv"] if cursor else None
    with deps.sessions() as session:
        rows = store.kv_page(
            tenant_id,
            kind=kind,
            model_id=model_id,
            name=name,
            session_id=session_id,
            after_id=after,
            limit=limit + 1,
            session=session,
        )
    more, rows = len(rows) > limit, rows[:limit]
    next_cursor = encode_cursor({"kv": rows[-1].id}) if more else None
    return Page(data=[kv_public(r) for r in rows], count=len(rows), next_cursor=next_cursor)


def delete_kv(deps: ServiceDeps, tenant_id: str, kv_id: str, *, kind: KVKind | None = None) -> None:
    with deps.sessions.begin() as session:
        row = _row(deps, tenant_id, kv_id, kind, session)
        digest = row.blob_sha256
        store.delete_kv(row, session=session)
    release_blobs(deps, [digest])


@dataclass
class KVContent:
    """A stored container to send, its blob opened while the row existed: an open file stays
    readable even when the row and its blob are deleted meanwhile."""

    kv: KVPublic
    file: BinaryIO

    def http_headers(self) -> dict[str, str]:
        """What a download answers with besides the bytes."""
        return {
            "ETag": f'"{self.kv.sha256}"',
            "X-Memsvc-Kv-Id": self.kv.id,
            "Content-Length": str(self.kv.size_bytes),
        }

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        """The container's bytes; the file is closed at the end (or when the reader stops)."""
        with self.file as f:
            while block := f.read(size):
                yield block


def _open_blob(deps: ServiceDeps, tenant_id: str, kv: KVPublic, kind: KVKind | None) -> BinaryIO:
    try:
        return deps.blobs.open(kv.sha256)
    except FileNotFoundError:
        with deps.sessions() as session:
            _row(deps, tenant_id, kv.id, kind, session)  # 404 when deleted meanwhile
        log.error("KV cache %s: its blob %s is missing", kv.id, kv.sha256)
        raise


def open_content(
    deps: ServiceDeps,
    tenant_id: str,
    kv_id: str,
    *,
    kind: KVKind | None = None,
    count_use: bool = True,
) -> KVContent:
    """The container of a stored cache; counts as a use (retention keeps what is used) unless
    ``count_use=False`` (the service's own reads, e.g. re-encoding)."""
    with deps.sessions.begin() as session:
        row = _row(deps, tenant_id, kv_id, kind, session)
        if count_use:
            store.touch(row.id, utcnow(), session=session)
        public = kv_public(row)
    return KVContent(public, _open_blob(deps, tenant_id, public, kind))


def load_container(
    deps: ServiceDeps,
    tenant_id: str,
    kv_id: str,
    *,
    kind: KVKind | None = None,
    count_use: bool = True,
) -> KVContainer:
    """The verified container (embedded SDK); a blob that fails verification is a 500."""
    content = open_content(deps, tenant_id, kv_id, kind=kind, count_use=count_use)
    with content.file as f:
        path = deps.blobs.local_path(content.kv.sha256)
        if path is not None:
            try:
                return read_container(path)
            except FileNotFoundError:  # deleted meanwhile: the open file still has it
                return read_container(f.read())
        # A remote blob: streamed to a local file first, never read whole into one buffer.
        copy = deps.blobs.spool(f)
    try:
        return read_container(copy)
    finally:
        copy.unlink(missing_ok=True)


def set_limits(
    deps: ServiceDeps,
    tenant_id: str,
    *,
    quota_bytes: int | None = None,
    retention_bytes: int | None = None,
) -> KVLimitsPublic:
    """Per-tenant overrides of the KV quota and episodic retention budget (None: settings)."""
    with deps.sessions.begin() as session:
        _require_tenant(tenant_id, session)
        store.set_limits(tenant_id, quota_bytes, retention_bytes, session=session)
    return get_limits(deps, tenant_id)


def get_limits(deps: ServiceDeps, tenant_id: str) -> KVLimitsPublic:
    """A tenant's overrides, what applies, and what it stores now."""
    with deps.sessions() as session:
        _require_tenant(tenant_id, session)
        row = store.get_limits(tenant_id, session=session)
        used = store.usage_bytes(tenant_id, session=session)
    config = deps.settings.kv
    quota = row.quota_bytes if row is not None else None
    retention = row.retention_bytes if row is not None else None
    return KVLimitsPublic(
        tenant_id=tenant_id,
        quota_bytes=quota,
        retention_bytes=retention,
        effective_quota_bytes=config.quota_bytes if quota is None else quota,
        effective_retention_bytes=config.retention_bytes if retention is None else retention,
        used_bytes=used,
    )


def _require_tenant(tenant_id: str, session: Session) -> None:
    if tenant_store.get_tenant(tenant_id, session=session) is None:
        raise NotFoundError(f"tenant {tenant_id} not found", field="tenant_id")
