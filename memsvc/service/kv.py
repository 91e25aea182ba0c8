"""KV memory: store, list, fetch and delete KV containers; find the longest stored prefix.

Containers (``kv_cartridges.format``) arrive as files (an upload streamed to disk, or a
container the service built) and are verified before anything is written. The blob store keeps
the file under its sha256; SQL keeps the row (tenant-scoped) and the token-hash prefixes
lookup uses. A rejected request changes nothing: every check runs before the transaction, the
quota check inside it under the tenant's row lock, and the file is moved in last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kv_cartridges.format import (
    FormatError,
    KVContainer,
    LayerReader,
    read_container,
    read_manifest,
)
from kv_cartridges.manifest import Manifest, parse_codec_spec
from kv_cartridges.quant import PRESETS, LayerwiseSpec, QuantSpec
from kv_cartridges.tokens import DEFAULT_CHUNK_TOKENS
from memsvc.errors import InvalidRequestError, NotFoundError
from memsvc.schemas import KVKind, KVPublic, Page
from memsvc.service.deps import ServiceDeps
from memsvc.service.validation import check_metadata, decode_cursor, encode_cursor
from stores import kv as store
from stores.models import KVCacheRow, utcnow

__all__ = [
    "KVContent",
    "bits_per_elem",
    "delete_kv",
    "drop_unused_blobs",
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

Spec = QuantSpec | LayerwiseSpec


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


def resolve_spec(spec: str | dict[str, Any] | Spec | None, field: str = "spec") -> Spec | None:
    """A codec spec from a preset name (``"default"``, ``"compact"``...), a spec dict (or its
    JSON text) or a spec object."""
    if spec is None or isinstance(spec, (QuantSpec, LayerwiseSpec)):
        return spec
    if isinstance(spec, str) and spec.lstrip().startswith("{"):
        try:
            spec = json.loads(spec)
        except ValueError as exc:
            raise InvalidRequestError(f"{field}: not JSON: {exc}", field=field) from exc
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise InvalidRequestError(
                f"{field}: unknown preset {spec!r} (presets: {sorted(PRESETS)})", field=field
            )
        return PRESETS[spec]
    try:
        return parse_codec_spec(spec)
    except FormatError as exc:
        raise InvalidRequestError(f"{field}: {exc}", field=field) from exc


def bits_per_elem(m: Manifest, size_bytes: int) -> float:
    """Stored bits per K/V element, every byte of the file counted."""
    numel = 2 * m.model.num_layers * m.batch * m.model.num_kv_heads * m.n_tokens * m.model.head_dim
    return 8 * size_bytes / max(numel, 1)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _check_origin(
    m: Manifest, kind: KVKind, session_id: str | None, episode_id: str | None
) -> None:
    origin = m.origin
    if kind == "cartridge":
        if origin.get("kind") != "cartridge":
            raise InvalidRequestError(
                f"origin.kind is {origin.get('kind')!r}: a cartridge's origin must be "
                "'cartridge' (episodic caches go to PUT /v1/sessions/{id}/kv)",
                field="content",
            )
        return
    if origin.get("kind") != "session" or origin.get("session_id") != session_id:
        raise InvalidRequestError(
            f"origin {origin!r} does not name session {session_id!r}", field="content"
        )
    if origin.get("episode_id") != episode_id:
        raise InvalidRequestError(
            f"origin.episode_id {origin.get('episode_id')!r} != episode_id {episode_id!r}",
            field="episode_id",
        )
    if m.token_chain is None:
        raise InvalidRequestError("an episodic cache needs its token ids' hash chain", "content")


def _reencode(path: Path, manifest: Manifest, spec: Spec, out: Path) -> None:
    """Compress a raw container server-side (``spec`` given with raw fp16/bf16/fp32 tensors)."""
    if manifest.codec["name"] != "raw":
        raise InvalidRequestError(
            "spec given, but the container is already encoded "
            f"({manifest.codec['name']}); upload raw tensors to compress server-side",
            field="spec",
        )
    try:
        with LayerReader(path, verify=False) as layers:  # verified just before; one at a time
            built = KVContainer.build(
                layers,
                manifest.model,
                spec=spec,
                start_position=manifest.start_position,
                origin=manifest.origin,
            )
    except FormatError as exc:
        raise InvalidRequestError(f"content: {exc}", field="content") from exc
    built.manifest.token_chain = manifest.token_chain
    built.manifest.created_at = manifest.created_at
    built.write(out)


@dataclass
class _Checked:
    manifest: Manifest
    path: Path
    digest: str
    size: int


def _check_file(
    deps: ServiceDeps,
    path: Path,
    *,
    kind: KVKind,
    session_id: str | None,
    episode_id: str | None,
    spec: Spec | None,
    digest: str | None,
    cleanup: list[Path],
) -> _Checked:
    try:
        manifest = read_manifest(path, max_bytes=deps.settings.kv.max_upload_bytes)
    except FormatError as exc:
        raise InvalidRequestError(f"content: {exc}", field="content") from exc
    _check_origin(manifest, kind, session_id, episode_id)
    chain = manifest.token_chain
    if chain is not None and chain["chunk_tokens"] != DEFAULT_CHUNK_TOKENS:
        raise InvalidRequestError(
            f"token_chain.chunk_tokens is {chain['chunk_tokens']}; the store indexes "
            f"chunks of {DEFAULT_CHUNK_TOKENS}",
            field="content",
        )
    if spec is not None:
        out = deps.blobs.new_tmp_file()
        cleanup.append(out)
        _reencode(path, manifest, spec, out)
        path, digest, manifest = out, None, read_manifest(out)
    return _Checked(manifest, path, digest or _file_sha256(path), path.stat().st_size)


def _check_id(value: str | None, field: str) -> str | None:
    if value is not None and not 1 <= len(value) <= 200:
        raise InvalidRequestError(f"{field} must be 1-200 characters", field=field)
    return value


def _quota(deps: ServiceDeps, tenant_id: str, session: Any) -> int:
    limits = store.get_limits(tenant_id, session=session)
    if limits is not None and limits.quota_bytes is not None:
        return limits.quota_bytes
    return deps.settings.kv.quota_bytes


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
        c = _check_file(
            deps,
            path,
            kind=kind,
            session_id=session_id,
            episode_id=episode_id,
            spec=spec,
            digest=digest,
            cleanup=cleanup,
        )
        m = c.manifest
        corpus_id = m.origin.get("corpus_id")
        corpus_id = None if corpus_id is None else _check_id(str(corpus_id), "origin.corpus_id")
        row = KVCacheRow(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            kind=kind,
            name=name,
            model_id=m.model_id,
            model=m.model.to_dict(),
            codec=m.codec,
            dtype=m.dtype,
            n_tokens=m.n_tokens,
            start_position=m.start_position,
            bits_per_elem=bits_per_elem(m, c.size),
            origin=m.origin,
            session_id=session_id,
            episode_id=episode_id,
            corpus_id=corpus_id,
            metadata_=metadata,
            blob_sha256=c.digest,
            payload_sha256=m.payload_sha256,
            size_bytes=c.size,
            created_at=utcnow(),
            use_count=0,
        )
        prefixes = m.boundaries() if m.start_position == 0 else []
        with deps.sessions.begin() as session:
            store.lock_tenant(tenant_id, session=session)
            replaced = (
                store.rows_for_session(tenant_id, session_id, episode_id, session=session)
                if kind == "episodic" and session_id is not None
                else []
            )
            used = store.usage_bytes(tenant_id, session=session)
            used -= sum(r.size_bytes for r in replaced)
            quota = _quota(deps, tenant_id, session)
            if used + c.size > quota:
                raise InvalidRequestError(
                    f"KV storage quota exceeded: {used} bytes used + {c.size} > {quota}",
                    field="content",
                    code="quota_exceeded",
                    status_code=413,
                )
            old = [r.blob_sha256 for r in replaced]
            for r in replaced:
                store.delete_kv(r, session=session)
            store.add_kv(row, prefixes, session=session)
            deps.blobs.put_file(c.path, c.digest)  # last: the file is the blob from now on
        drop_unused_blobs(deps, old)
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


def drop_unused_blobs(deps: ServiceDeps, digests: Iterable[str]) -> None:
    """Delete blobs no row points at any more (after the rows' transaction committed)."""
    for digest in set(digests):
        with deps.sessions() as session:
            if store.blob_in_use(digest, session=session):
                continue
        deps.blobs.delete(digest)


def delete_kv(deps: ServiceDeps, tenant_id: str, kv_id: str, *, kind: KVKind | None = None) -> None:
    with deps.sessions.begin() as session:
        row = _row(deps, tenant_id, kv_id, kind, session)
        digest = row.blob_sha256
        store.delete_kv(row, session=session)
    drop_unused_blobs(deps, [digest])


@dataclass
class KVContent:
    """A stored container to send: a local file when the blob store has one."""

    kv: KVPublic
    path: Path | None

    def chunks(self, deps: ServiceDeps, size: int = 1 << 20) -> Iterable[bytes]:
        with deps.blobs.open(self.kv.sha256) as f:
            while block := f.read(size):
                yield block


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
    return KVContent(public, deps.blobs.local_path(public.sha256))


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
    if content.path is not None:
        return read_container(content.path)
    return read_container(b"".join(content.chunks(deps)))


def set_limits(
    deps: ServiceDeps,
    tenant_id: str,
    *,
    quota_bytes: int | None = None,
    retention_bytes: int | None = None,
) -> None:
    """Per-tenant overrides of the KV quota and episodic retention budget (None: settings)."""
    with deps.sessions.begin() as session:
        store.set_limits(tenant_id, quota_bytes, retention_bytes, session=session)
