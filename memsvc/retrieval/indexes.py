"""Keeps the derived indexes (faiss vectors, BM25) in step with SQL, the system of record.

Every memory write stamps its row with a rev from a counter that is handed out in commit order
(see :func:`stores.memories.reserve_revs`). :meth:`DerivedIndexes.sync` reads the rows written
after its watermark, tombstones included, and applies them, so any number of processes over one
database converge on the same index. The vectors are snapshotted to disk with the watermark, so
a restart replays only what changed since; BM25 is rebuilt from the rows' text at open.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from memsvc.retrieval.bm25 import BM25Index
from memsvc.retrieval.text import tokenize
from stores.memories import changes_since
from stores.models import MemoryRow
from stores.vector_index import PartitionKey, VectorIndex

__all__ = ["DerivedIndexes", "partition_of"]

log = logging.getLogger(__name__)

_SYNC_BATCH = 5000


def partition_of(tenant_id: str, user_id: str | None) -> PartitionKey:
    """Index partition of a memory: one per user of each tenant ("" for no user)."""
    return (tenant_id, user_id or "")


class DerivedIndexes:
    """The faiss and BM25 indexes of every tenant, synced from SQL by watermark."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        dim: int,
        embedding_model: str,
        database: str = "",
        directory: Path | None = None,
        snapshot_seconds: float = 30.0,
    ) -> None:
        self._sessions = sessions
        self.embedding_model = embedding_model
        # A snapshot is only valid for the database (and model) it was taken from.
        self.database = database
        self.directory = directory
        self.snapshot_seconds = snapshot_seconds
        self.vectors = VectorIndex(dim)
        self.lexical = BM25Index()
        self.watermark: tuple[int, int] = (0, 0)
        self._saved_watermark: tuple[int, int] = (0, 0)
        self._last_save = time.monotonic()
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()

    # -- life cycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Load the vector snapshot if it matches this model, rebuild BM25, then catch up."""
        with self._lock:
            state = self.vectors.load(self.directory) if self.directory else None
            if state and state.get("identity") == self._identity():
                self.watermark = (int(state["watermark"][0]), int(state["watermark"][1]))
                self._saved_watermark = self.watermark
                self._load_lexical_upto(self.watermark)
            else:
                self.vectors.clear()
                self.watermark = (0, 0)
            self.sync()

    def _load_lexical_upto(self, watermark: tuple[int, int]) -> None:
        # BM25 is cheap to rebuild and not snapshotted: index the live text the snapshot covers.
        rev, pk = watermark
        stmt = select(MemoryRow.pk, MemoryRow.tenant_id, MemoryRow.user_id, MemoryRow.text).where(
            MemoryRow.deleted_at.is_(None),
            (MemoryRow.rev < rev) | ((MemoryRow.rev == rev) & (MemoryRow.pk <= pk)),
        )
        with self._sessions() as session:
            for row_pk, tenant, user, text in session.execute(stmt):
                self.lexical.upsert(partition_of(tenant, user), row_pk, tokenize(text))

    def rebuild(self) -> int:
        """Drop both indexes and rebuild them from SQL; returns the number of live memories."""
        with self._lock:
            self.vectors.clear()
            self.lexical.clear()
            self.watermark = (0, 0)
            self.sync()
            self.save()
            return len(self.vectors)

    def close(self) -> None:
        self.save_if_dirty(force=True)

    # -- syncing -----------------------------------------------------------------------------

    def sync(self) -> int:
        """Apply every change committed since the watermark; returns how many were applied."""
        applied = 0
        with self._lock, self._sessions() as session:
            while True:
                changes = changes_since(self.watermark, limit=_SYNC_BATCH, session=session)
                if not changes:
                    break
                self._apply(changes)
                applied += len(changes)
                last = changes[-1]
                self.watermark = (last.rev, last.pk)
                if len(changes) < _SYNC_BATCH:
                    break
        return applied

    def _apply(self, changes: list) -> None:
        gone = [c.pk for c in changes if c.deleted]
        if gone:
            self.vectors.remove(gone)
            self.lexical.remove(gone)
        by_part: dict[PartitionKey, list] = {}
        for change in changes:
            if change.deleted:
                continue
            key = partition_of(change.tenant_id, change.user_id)
            by_part.setdefault(key, []).append(change)
            self.lexical.upsert(key, change.pk, tokenize(change.text))
        for key, rows in by_part.items():
            usable = [
                c
                for c in rows
                if c.embedding is not None and c.embedding_model == self.embedding_model
            ]
            stale = [c.pk for c in rows if c not in usable]
            if stale:
                # Embedded by another model: searchable lexically until `memsvc index rebuild`.
                self.vectors.remove(stale)
                log.warning("%d memories carry embeddings of another model", len(stale))
            if usable:
                pks = np.fromiter((c.pk for c in usable), dtype=np.int64, count=len(usable))
                vectors = np.stack([np.frombuffer(c.embedding, dtype=np.float32) for c in usable])
                self.vectors.upsert(key, pks, vectors)

    # -- snapshots ---------------------------------------------------------------------------

    def _identity(self) -> dict[str, str]:
        return {"database": self.database, "embedding_model": self.embedding_model}

    def save(self) -> None:
        if self.directory is None:
            return
        # Copy under the lock (fast), write without it: searches must not wait for the disk.
        with self._save_lock:
            with self._lock:
                watermark = self.watermark
                serialized = self.vectors.serialize()
            state = {"watermark": list(watermark), "identity": self._identity()}
            self.vectors.write_snapshot(self.directory, serialized, state)
            self._saved_watermark = watermark
            self._last_save = time.monotonic()

    def save_if_dirty(self, *, force: bool = False) -> None:
        """Snapshot when there are unsaved changes and the snapshot interval has passed."""
        if self.directory is None or self.watermark == self._saved_watermark:
            return
        due = time.monotonic() - self._last_save >= self.snapshot_seconds > 0
        if force or due:
            self.save()
