"""Keeps the derived indexes (faiss vectors, BM25) in step with SQL, the system of record.

Every memory write stamps its row with a rev from a counter that is handed out in commit order
(see :func:`stores.memories.reserve_revs`). :meth:`DerivedIndexes.sync` reads the rows written
after its watermark, tombstones included, and applies them, so any number of processes over one
database converge on the same index.

On demand (the default): :meth:`DerivedIndexes.open` only notes the newest change; a (tenant,
user) partition is loaded from its rows at that watermark when a search first needs it
(:meth:`DerivedIndexes.hold`), and from then on follows the change feed like the rest. Loaded
partitions are kept within a memory budget, the least recently searched evicted
(:class:`~memsvc.retrieval.partitions.PartitionCache`); a search pins what it uses. Start-up
no longer grows with the dataset, only with what a replica serves.

Preloaded (``on_demand=False``): every partition is loaded at open; the vectors are snapshotted
to disk with the watermark, so a restart replays only what changed since; BM25, the sentence
vectors and the turn catalog are rebuilt from the rows at open.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memsvc.retrieval.bm25 import BM25Index
from memsvc.retrieval.partitions import PartitionCache
from memsvc.retrieval.sentences import MAX_SENTENCES, decode_vectors
from memsvc.retrieval.text import tokenize
from memsvc.retrieval.turns import TurnCatalog
from stores.memories import changes_since, live_rows_upto
from stores.partition_rows import head_watermark, live_count, partition_rows, partition_users
from stores.vector_index import Approximate, PartitionKey, VectorIndex

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
        on_demand: bool = False,
        memory_budget_bytes: int = 2 << 30,
        approximate: Approximate | None = None,
    ) -> None:
        self._sessions = sessions
        self.embedding_model = embedding_model
        # A snapshot is only valid for the database (and model) it was taken from; on demand,
        # partitions come from SQL when searched and nothing is snapshotted.
        self.database = database
        self.directory = None if on_demand else directory
        self.snapshot_seconds = snapshot_seconds
        self.cache = PartitionCache(memory_budget_bytes) if on_demand else None
        self.vectors = VectorIndex(dim, approximate)
        self.lexical = BM25Index()
        self.sentences = VectorIndex(dim, approximate)
        self.turns = TurnCatalog()
        self.watermark: tuple[int, int] = (0, 0)
        self._saved_watermark: tuple[int, int] = (0, 0)
        self._last_save = time.monotonic()
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()

    # -- life cycle --------------------------------------------------------------------------

    def open(self) -> None:
        """On demand: start at the newest change, nothing loaded. Else load the vector
        snapshot if it matches this model, rebuild BM25, then catch up."""
        with self._lock:
            if self.cache is not None:
                with self._sessions() as session:
                    self.watermark = head_watermark(session=session)
                return
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
        """Drop both indexes and rebuild them from SQL; returns the number of live memories
        (on demand: every partition is dropped and reloaded when next searched)."""
        with self._lock:
            self.vectors.clear()
            self.lexical.clear()
            self.sentences.clear()
            self.turns.clear()
            if self.cache is not None:
                self.cache.clear()
                with self._sessions() as session:
                    self.watermark = head_watermark(session=session)
                    return live_count(session=session)
            self.watermark = (0, 0)
            self.sync()
            self.save()
            return len(self.vectors)

    # -- partitions on demand ----------------------------------------------------------------

    def partitions(self, tenant_id: str) -> list[PartitionKey]:
        """Every search partition of a tenant (on demand: from SQL, loaded or not)."""
        if self.cache is None:
            keys = set(self.vectors.partitions(tenant_id))
            keys.update(self.lexical.partitions(tenant_id))
            return sorted(keys)
        with self._sessions() as session:
            users = partition_users(tenant_id, session=session)
        return [partition_of(tenant_id, user) for user in users]

    def loaded(self, key: PartitionKey) -> bool:
        return self.cache is None or key in self.cache

    @contextmanager
    def hold(self, keys: Iterable[PartitionKey]) -> Iterator[None]:
        """Make sure ``keys`` are loaded and keep them loaded while the block runs (a search
        over them); partitions beyond the memory budget are evicted, least recent first."""
        cache = self.cache
        if cache is None:
            yield
            return
        keys = list(dict.fromkeys(keys))
        with self._lock:
            missing = [key for key in keys if key not in cache]
            if missing:
                self._load(missing)
            cache.pin(keys)
            self._evict()
        try:
            yield
        finally:
            with self._lock:
                cache.unpin(keys)
                self._evict()

    def _load(self, keys: list[PartitionKey]) -> None:
        # The rows at the watermark, then the feed carries on from it: the partition ends up
        # exactly as if it had been loaded at start and synced since.
        assert self.cache is not None
        with self._sessions() as session:
            for key in keys:
                self.cache.added(key)
                batch: list = []
                for change in partition_rows(key[0], key[1], self.watermark, session=session):
                    batch.append(change)
                    if len(batch) >= _SYNC_BATCH:
                        self._apply(batch)
                        batch = []
                if batch:
                    self._apply(batch)
                self.cache.resize(key, self.nbytes(key))

    def nbytes(self, key: PartitionKey) -> int:
        """Estimated memory of one partition: vectors, sentence vectors, BM25, turns."""
        return self.vectors.nbytes(key) + self.sentences.nbytes(key) + self.lexical.nbytes(key)

    def _evict(self) -> None:
        assert self.cache is not None
        for key in self.cache.victims():
            pks = set(self.vectors.pks(key)) | set(self.lexical.pks(key))
            self.vectors.drop(key)
            self.sentences.drop(key)
            self.lexical.drop(key)
            self.turns.remove(list(pks))
            self.cache.forget(key)

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
        if self.cache is not None:
            # A change to a partition not loaded is read with it when it is; its pk may still
            # sit in a loaded partition it moved out of, so it is removed there.
            changes = [
                c if self.loaded(partition_of(c.tenant_id, c.user_id)) else _as_removal(c)
                for c in changes
            ]
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
            if self.cache is not None:
                self.cache.resize(key, self.nbytes(key))

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


def _as_removal(change: Any) -> Any:
    """A change of an unloaded partition, applied to the loaded ones as a removal."""
    return replace(change, deleted=True)
