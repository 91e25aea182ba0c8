"""Export and import: one versioned, checksummed archive of a tenant or of one user of it.

The archive is a zip (docs/export-format.md): one JSON Lines member per table, one member per
KV blob (``kv/<sha256>``), and ``manifest.json``, written last, with the format version,
the scope, each member's row count, size and sha256. Export streams: rows are read in pages
and written through to the archive (memory stays flat in the archive's size). Import checks
every member's sha256 first, then inserts with ids kept: a row whose id is already there is
skipped when its content is the same and reported as a conflict when it is not (never merged);
rows that depend on a conflicting or skipped row (its history, links) follow it. New memory
rows get fresh change-counter revs, so the derived indexes pick them up on the sync at the end.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from memsvc.errors import InvalidRequestError
from memsvc.service.deps import ServiceDeps
from memsvc.service.kv_blobs import put_blob
from stores import memories as memory_store
from stores import transfer as store
from stores.models import (
    EntityRow,
    KVCacheRow,
    KVPrefixRow,
    MemoryEntity,
    MemoryHistory,
    MemoryRow,
    RelationRow,
    utcnow,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ImportReport",
    "export_archive",
    "import_archive",
    "read_manifest",
    "verify_archive",
]

FORMAT = "memsvc-export"
FORMAT_VERSION = 1
_BATCH = 500
_CHUNK = 1 << 20

Progress = Callable[[str, int], None]  # (member, rows so far)


class _HashingWriter:
    """A file-like sink that hashes and counts what goes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        self.raw.write(data)


def export_archive(
    deps: ServiceDeps,
    tenant_id: str,
    target: Path,
    *,
    user_id: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the tenant's (or the user's) archive to ``target``; returns the manifest."""
    members: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    digests: set[str] = set()
    with deps.sessions() as session:
        sessions = store.user_sessions(tenant_id, user_id, session=session) if user_id else []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name in store.TABLES:
            n = 0
            with deps.sessions() as session, zf.open(f"{name}.jsonl", "w", force_zip64=True) as raw:
                sink = _HashingWriter(raw)
                for row in store.read_table(
                    name, tenant_id, user_id=user_id, sessions=sessions, session=session
                ):
                    sink.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
                    if name == "kv_caches":
                        digests.add(row["blob_sha256"])
                    n += 1
                    if progress and n % 1000 == 0:
                        progress(name, n)
            counts[name] = n
            members[f"{name}.jsonl"] = {
                "rows": n,
                "bytes": sink.size,
                "sha256": sink.sha.hexdigest(),
            }
            if progress:
                progress(name, n)
        for digest in sorted(digests):
            with (
                deps.blobs.open(digest) as blob,
                zf.open(f"kv/{digest}", "w", force_zip64=True) as raw,
            ):
                sink = _HashingWriter(raw)
                while chunk := blob.read(_CHUNK):
                    sink.write(chunk)
            if sink.sha.hexdigest() != digest:
                raise OSError(f"blob {digest} does not match its digest; not exported")
            members[f"kv/{digest}"] = {"bytes": sink.size, "sha256": digest}
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": utcnow().isoformat(),
            "tenant_id": tenant_id,
            "scope": {"user_id": user_id} if user_id else {"tenant": tenant_id},
            "embedding_model": deps.embedder.name,
            "counts": counts,
            "members": members,
        }
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    return manifest


@dataclass
class ImportReport:
    """What an import did, per table: inserted, skipped (same content), conflicts."""

    inserted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    conflicts: list[dict[str, str]] = field(default_factory=list)

    def count(self, kind: str, table: str, n: int = 1) -> None:
        bucket = self.inserted if kind == "inserted" else self.skipped
        bucket[table] = bucket.get(table, 0) + n

    def as_dict(self) -> dict[str, Any]:
        return {"inserted": self.inserted, "skipped": self.skipped, "conflicts": self.conflicts}


def _read_manifest(zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = json.loads(zf.read("manifest.json"))
    except (KeyError, ValueError) as exc:
        raise InvalidRequestError(f"not a memsvc archive: {exc}", field="archive") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise InvalidRequestError(
            f"archive format {manifest.get('format')!r} v{manifest.get('version')!r}; this "
            f"memsvc reads {FORMAT!r} v{FORMAT_VERSION}",
            field="archive",
        )
    return manifest


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InvalidRequestError(f"not a readable archive: {exc}", field="archive") from exc


def read_manifest(path: Path) -> dict[str, Any]:
    """The archive's manifest (format and version checked; members not)."""
    with _open(path) as zf:
        return _read_manifest(zf)


def verify_archive(path: Path) -> dict[str, Any]:
    """The manifest, after checking every member's sha256 (streamed)."""
    with _open(path) as zf:
        manifest = _read_manifest(zf)
        for name, info in manifest["members"].items():
            sha = hashlib.sha256()
            with zf.open(name) as member:
                while chunk := member.read(_CHUNK):
                    sha.update(chunk)
            if sha.hexdigest() != info["sha256"]:
                raise InvalidRequestError(
                    f"archive member {name} fails its checksum", field="archive"
                )
    return manifest


def _rows(zf: zipfile.ZipFile, name: str) -> Iterator[dict[str, Any]]:
    with zf.open(f"{name}.jsonl") as member:
        for line in member:
            if line.strip():
                yield json.loads(line)


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# Usage counters that reading a row changes (retrieval reinforcement, KV use): not content, so
# a row that differs only in them is the same row (skipped, not a conflict).
_VOLATILE = {"access_count", "last_accessed_at", "strength", "last_used_at", "use_count"}


def _comparable(data: dict[str, Any]) -> str:
    kept = {k: v for k, v in data.items() if k not in _VOLATILE}
    return json.dumps(kept, sort_keys=True, default=str)


def import_archive(
    deps: ServiceDeps, path: Path, tenant_id: str, *, progress: Progress | None = None
) -> ImportReport:
    """Import the archive into ``tenant_id`` (which must exist); see the module docstring."""
    verify_archive(path)
    report = ImportReport()
    new_memories: set[str] = set()  # ids inserted now: their history comes with them
    new_kv: set[str] = set()
    with zipfile.ZipFile(path) as zf:
        for name in store.TABLES:
            model = store.TABLES[name][0]
            done = 0
            for batch in _batches(_rows(zf, name)):
                with deps.sessions.begin() as session:
                    # new memory rows get a fresh rev: the indexes' sync picks them up
                    rev = memory_store.reserve_revs(1, session=session) if model is MemoryRow else 0
                    _import_batch(
                        deps, zf, name, model, batch, tenant_id, rev, report,
                        new_memories, new_kv, session,
                    )  # fmt: skip
                done += len(batch)
                if progress:
                    progress(name, done)
    deps.sync_indexes()
    deps.indexes.save()
    # working memory is derived from the events not yet promoted: refill it from them
    from memsvc.service.working import restore_short_term

    restore_short_term(deps, force=True)
    return report


def _import_batch(
    deps: ServiceDeps,
    zf: zipfile.ZipFile,
    name: str,
    model: Any,
    batch: list[dict[str, Any]],
    tenant_id: str,
    rev: int,
    report: ImportReport,
    new_memories: set[str],
    new_kv: set[str],
    session: Any,
) -> None:
    fresh: list[dict[str, Any]] = []
    if model is MemoryHistory:
        fresh = [r for r in batch if r["memory_id"] in new_memories]
        report.count("skipped", name, len(batch) - len(fresh))
    elif model is KVPrefixRow:
        fresh = [r for r in batch if r["kv_id"] in new_kv]
        report.count("skipped", name, len(batch) - len(fresh))
    elif model is MemoryEntity:
        memories = store.pks_by_ids(
            MemoryRow, tenant_id, [r["memory_id"] for r in batch], session=session
        )
        entities = store.pks_by_ids(
            EntityRow, tenant_id, [r["entity_id"] for r in batch], session=session
        )
        for r in batch:
            if r["memory_id"] in new_memories and r["entity_id"] in entities:
                fresh.append(
                    {
                        **r,
                        "memory_pk": memories[r["memory_id"]],
                        "entity_pk": entities[r["entity_id"]],
                    }
                )
            else:
                report.count("skipped", name)
    else:
        key = "id"
        have = store.existing(name, tenant_id, [r[key] for r in batch], session=session)
        for r in batch:
            if r[key] not in have:
                fresh.append(r)
                continue
            found = have[r[key]]
            if found is None:
                why = "the id belongs to another tenant"
                report.conflicts.append({"table": name, "id": r[key], "why": why})
                continue
            mine = {k: v for k, v in r.items() if k in found}
            if _comparable(mine) == _comparable(found):
                report.count("skipped", name)
            else:
                report.conflicts.append({"table": name, "id": r[key]})
    if model is EntityRow:  # the same (user, key) under another id: a conflict too
        taken = store.entity_keys_taken(
            tenant_id, [(r["user_id"], r["key"]) for r in fresh], session=session
        )
        clash = [r for r in fresh if (r["user_id"], r["key"]) in taken]
        for r in clash:
            why = f"entity key taken by {taken[(r['user_id'], r['key'])]}"
            report.conflicts.append({"table": name, "id": r["id"], "why": why})
        fresh = [r for r in fresh if (r["user_id"], r["key"]) not in taken]
    if model is RelationRow:
        ids = [r["source_id"] for r in fresh] + [r["target_id"] for r in fresh]
        entities = store.pks_by_ids(EntityRow, tenant_id, ids, session=session)
        memories = store.pks_by_ids(
            MemoryRow, tenant_id, [r.get("memory_id") for r in fresh], session=session
        )
        kept = []
        for r in fresh:
            if r["source_id"] in entities and r["target_id"] in entities:
                kept.append({**r, "source_pk": entities[r["source_id"]],
                             "target_pk": entities[r["target_id"]],
                             "memory_pk": memories.get(r.get("memory_id") or "")})  # fmt: skip
            else:
                report.conflicts.append({"table": name, "id": r["id"], "why": "entity missing"})
        fresh = kept
    if model is KVCacheRow:
        for r in fresh:
            _put_archived_blob(deps, zf, r["blob_sha256"], int(r["size_bytes"]), session)
    rows = []
    for r in fresh:
        row = store.decode_row(model, r)
        for extra in ("source_pk", "target_pk", "memory_pk", "entity_pk"):
            if extra in r:
                row[extra] = r[extra]
        row["tenant_id"] = tenant_id
        if model is MemoryRow:
            row["rev"] = rev
        rows.append(row)
    store.insert_rows(model, rows, session=session)
    if model is MemoryRow:
        new_memories.update(r["id"] for r in fresh)
    if model is KVCacheRow:
        new_kv.update(r["id"] for r in fresh)
    report.count("inserted", name, len(rows))


def _put_archived_blob(
    deps: ServiceDeps, zf: zipfile.ZipFile, digest: str, size: int, session: Any
) -> None:
    """Copy ``kv/<digest>`` into the blob store under its registry lock (kv_blobs)."""
    tmp = deps.blobs.new_tmp_file()
    sha = hashlib.sha256()
    with zf.open(f"kv/{digest}") as member, tmp.open("wb") as out:
        while chunk := member.read(_CHUNK):
            sha.update(chunk)
            out.write(chunk)
    if sha.hexdigest() != digest:
        tmp.unlink(missing_ok=True)
        raise InvalidRequestError(f"archive blob kv/{digest} fails its checksum", field="archive")
    put_blob(deps, tmp, digest, size, session=session)
