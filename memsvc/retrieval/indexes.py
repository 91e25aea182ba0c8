"""Keeps the derived indexes (faiss vectors, BM25) in step with SQL, the system of record.

Every memory write stamps its row with a rev from a counter that is handed out in commit order
(see :func:`stores.memories.reserve_revs`). :meth:`DerivedIndexes.sync` reads the rows written
after its watermark, tombstones included, and applies them, so any number of processes over one
database converge on the same index. The vectors are snapshotted to disk with the watermark, so
a restart replays only what changed since; BM25, the sentence vectors and the turn catalog are
rebuilt from the rows at open.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memsvc.retrieval.bm25 import BM25Index
from memsvc.retrieval.sentences import MAX_SENTENCES, decode_vectors
from memsvc.retrieval.text import tokenize
from memsvc.retrieval.turns import TurnCatalog
from stores.memories import changes_since, live_rows_upto
from stores.vector_index import PartitionKey, VectorIndex

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["DerivedIndexes", "partition_of"]

log = logging.getLogger(__name__)

_SYNC_BATCH = 5000


def partition_of(tenant_id: str, user_id: str | None) -> PartitionKey:
    """Index partition of a memory: one per user of each tenant ("" for no user)."""
    return (tenant_id, user_id or "")


class DerivedIndexes:
    """The faiss and BM25 indexes of every tenant, synced from SQL by watermark.

    ``vectors`` holds one vector per memory (id = pk); ``sentences`` the sentence vectors of
    long memories (id = pk * MAX_SENTENCES + n); ``turns`` the session order of messages.
    """

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
        self.sentences = VectorIndex(dim)
        self.turns = TurnCatalog()
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
                self._load_derived_upto(self.watermark)
            else:
                self.vectors.clear()
                self.watermark = (0, 0)
            self.sync()

    def _load_derived_upto(self, watermark: tuple[int, int]) -> None:
        # BM25, sentence vectors and turn order are cheap to rebuild and not snapshotted:
        # index the live rows the vector snapshot covers.
        with self._sessions() as session:
            for row in live_rows_upto(watermark, session=session):
                key = partition_of(row.tenant_id, row.user_id)
                self.lexical.upsert(key, row.pk, tokenize(row.text))
                self._index_turn(row)
                if row.embedding_model == self.embedding_model:
                    self._index_sentences(key, row.pk, row.sentence_vectors)

    def _index_turn(self, row: Any) -> None:
        if row.kind == "message" and row.session_id is not None and row.occurred_at:
            key = (row.tenant_id, row.user_id or "", row.session_id)
            self.turns.upsert(row.pk, key, row.occurred_at, row.text)
        else:  # no longer a turn (its kind or session changed): out of the conversation
            self.turns.remove([row.pk])

    def _index_sentences(self, key: PartitionKey, pk: int, blob: bytes | None) -> None:
        vectors = decode_vectors(blob, self.vectors.dim)
        if len(vectors):
            ids = pk * MAX_SENTENCES + np.arange(len(vectors), dtype=np.int64)
            self.sentences.upsert(key, ids, vectors)

    def _forget_sentences(self, pks: list[int]) -> None:
        ids = np.add.outer(
            np.asarray(pks, dtype=np.int64) * MAX_SENTENCES, np.arange(MAX_SENTENCES)
        )
        self.sentences.remove(ids.ravel())

    def dense_search(
        self, key: PartitionKey, query: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        """The ``k`` memories nearest the query, each scored by the better of its whole-text
        vector and its best sentence."""
        best = dict(self.vectors.search(key, query, k, allowed))
        if self.sentences.size(key):
            if allowed is not None:
                allowed = np.add.outer(allowed * MAX_SENTENCES, np.arange(MAX_SENTENCES)).ravel()
            for sentence_id, score in self.sentences.search(key, query, 2 * k, allowed):
                pk = sentence_id // MAX_SENTENCES
                if score > best.get(pk, -1.0):
                    best[pk] = score
        return sorted(best.items(), key=lambda item: -item[1])[:k]

    def rebuild(self) -> int:
        """Drop both indexes and rebuild them from SQL; returns the number of live memories."""
        with self._lock:
            self.vectors.clear()
            self.lexical.clear()
            self.sentences.clear()
            self.turns.clear()
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
            self.turns.remove(gone)
            self._forget_sentences(gone)
        by_part: dict[PartitionKey, list] = {}
        for change in changes:
            if change.deleted:
                continue
            key = partition_of(change.tenant_id, change.user_id)
            by_part.setdefault(key, []).append(change)
            self.lexical.upsert(key, change.pk, tokenize(change.text))
            self._index_turn(change)
        for key, rows in by_part.items():
            usable, stale = [], []
            for c in rows:
                if c.embedding is not None and c.embedding_model == self.embedding_model:
                    usable.append(c)
                else:
                    stale.append(c.pk)
            # A rewritten text may have fewer sentences than before: drop the old ones first.
            self._forget_sentences([c.pk for c in rows])
            if stale:
                # Embedded by another model: searchable lexically until `memsvc index rebuild`.
                self.vectors.remove(stale)
                log.warning("%d memories carry embeddings of another model", len(stale))
            if usable:
                pks = np.fromiter((c.pk for c in usable), dtype=np.int64, count=len(usable))
                vectors = np.stack([np.frombuffer(c.embedding, dtype=np.float32) for c in usable])
                self.vectors.upsert(key, pks, vectors)
                for change in usable:
                    self._index_sentences(key, change.pk, change.sentence_vectors)

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

    def snapshot_due(self) -> bool:
        """There are unsaved changes and the snapshot interval has passed."""
        if self.directory is None or self.watermark == self._saved_watermark:
            return False
        return time.monotonic() - self._last_save >= self.snapshot_seconds > 0

    def save_if_dirty(self, *, force: bool = False) -> None:
        """Snapshot when there are unsaved changes and the snapshot interval has passed."""
        if self.directory is None or self.watermark == self._saved_watermark:
            return
        if force or self.snapshot_due():
            self.save()
