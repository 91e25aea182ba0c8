"""The lifecycle of KV blobs, shared by content hash across rows and tenants.

A blob is put in and taken out only while its registry row (``kv_blobs``) is held by the
transaction doing it (``stores.kv.lock_blob``: an upsert, so a row lock on PostgreSQL and the
write lock on SQLite):

- a write that makes a row point at a blob (upload, re-encode) locks the blob's registry row,
  puts the file (or keeps the one there), then commits with the row;
- a collection locks the registry row, and only when no row points at the blob any more (read
  under that lock) deletes the file and the registry row, then commits.

So an upload that found the file present has committed its row before any collection can look,
or looks after that collection has committed its removal (and puts its own file back). The
BlobStore itself needs nothing but put/exists/delete/digests: an object store works the same.

Collections run after the commit that removed a reference (best effort) and in the sweep of the
decay pass, which also collects what a crashed process left behind: registered blobs nothing
points at, files without a registry row, stale temporary files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from memsvc.service.deps import ServiceDeps
from stores import kv as store
from stores.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["collect_blob", "put_blob", "release_blobs", "sweep_blobs"]

log = logging.getLogger(__name__)

_BATCH = 500


def put_blob(deps: ServiceDeps, path: Path, digest: str, size: int, *, session: Session) -> None:
    """Inside the transaction that makes a row point at ``digest``, as its last step: lock the
    blob's registry row, then put the file (kept when the blob is already there)."""
    store.lock_blob(digest, size_bytes=size, session=session)
    deps.blobs.put_file(path, digest)


def collect_blob(deps: ServiceDeps, digest: str) -> bool:
    """Delete the blob if no row points at it (checked under its registry row's lock)."""
    with deps.sessions.begin() as session:
        store.lock_blob(digest, session=session)
        if store.blob_in_use(digest, session=session):
            return False
        deps.blobs.delete(digest)
        store.forget_blob(digest, session=session)
    return True


def release_blobs(deps: ServiceDeps, digests: Iterable[str]) -> None:
    """After a commit that removed references: collect the blobs now. A failure here changes
    nothing that was acknowledged; the sweep collects the blob later."""
    for digest in set(digests):
        try:
            collect_blob(deps, digest)
        except (OSError, DatabaseError):
            log.warning("blob %s not collected now; the sweep will", digest, exc_info=True)


def _batches(items: Iterable[str]) -> Iterable[list[str]]:
    it = iter(items)
    while batch := list(islice(it, _BATCH)):
        yield batch


def sweep_blobs(deps: ServiceDeps) -> int:
    """Collect every blob nothing points at: registered ones left by a failed collection, files
    an interrupted upload put in without committing, and temporary files older than
    ``MEMSVC_KV__TMP_MAX_AGE_SECONDS``. Returns how many blobs were deleted."""
    collected, tried = 0, set()
    while True:
        with deps.sessions() as session:
            unused = store.unreferenced_blobs(_BATCH, session=session)
        unused = [d for d in unused if d not in tried]  # one try each per sweep
        if not unused:
            break
        tried.update(unused)
        collected += sum(collect_blob(deps, d) for d in unused)
    for batch in _batches(deps.blobs.digests()):
        with deps.sessions() as session:
            known = store.registered_blobs(batch, session=session)
        # an upload between putting its file and committing holds the registry row: the
        # collection waits for it, then sees its row and keeps the blob
        collected += sum(collect_blob(deps, d) for d in batch if d not in known)
    deps.blobs.remove_stale_tmp(deps.settings.kv.tmp_max_age_seconds)
    return collected
