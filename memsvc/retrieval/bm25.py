"""An incremental BM25 index over per-(tenant, user) partitions, scored with numpy.

Documents live in slots; postings are per-term slot/tf arrays. Removing a document frees its
slot (postings are pruned lazily), so adds, updates and deletes are cheap and the index stays in
step with SQL the same way the faiss index does.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BM25Index", "bm25_scores"]

PartitionKey = tuple[str, str]


@dataclass
class _Postings:
    slots: list[int] = field(default_factory=list)
    tfs: list[int] = field(default_factory=list)
    arrays: tuple[np.ndarray, np.ndarray] | None = None  # cached numpy view of the lists


@dataclass
class _Partition:
    slot_of: dict[int, int] = field(default_factory=dict)
    pk_at: list[int] = field(default_factory=list)
    terms_at: list[Counter[str] | None] = field(default_factory=list)
    doc_len: list[int] = field(default_factory=list)
    postings: dict[str, _Postings] = field(default_factory=dict)
    df: Counter[str] = field(default_factory=Counter)
    total_len: int = 0
    dead_slots: list[int] = field(default_factory=list)
    len_array: np.ndarray | None = None  # cached numpy view of doc_len (reset on change)


def bm25_scores(
    docs: list[tuple[Counter[str], int]], tokens: list[str], k1: float = 1.2, b: float = 0.75
) -> np.ndarray:
    """BM25 of a small collection scored once, without an index: ``docs`` are each document's
    (term counts, length). The same formula as :meth:`BM25Index.search`; for working memory,
    whose pieces change with every write and number a few hundred per session."""
    scores = np.zeros(len(docs), dtype=np.float32)
    if not docs or not tokens:
        return scores
    doc_len = np.asarray([n for _, n in docs], dtype=np.float32)
    avg_len = float(doc_len.sum()) / len(docs) or 1.0
    for term, qtf in Counter(tokens).items():
        slots = [i for i, (terms, _) in enumerate(docs) if term in terms]
        if not slots:
            continue
        tfs = np.asarray([docs[i][0][term] for i in slots], dtype=np.float32)
        df = len(slots)
        idf = math.log(1.0 + (len(docs) - df + 0.5) / (df + 0.5))
        norm = k1 * (1.0 - b + b * doc_len[slots] / avg_len)
        scores[slots] += qtf * idf * tfs * (k1 + 1.0) / (tfs + norm)
    return scores


class BM25Index:
    """Okapi BM25 (k1, b) with the Lucene idf, partitioned like the vector index."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._parts: dict[PartitionKey, _Partition] = {}
        self._where: dict[int, PartitionKey] = {}
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._where)

    def upsert(self, key: PartitionKey, pk: int, tokens: list[str]) -> None:
        """Index (or re-index) document ``pk`` with ``tokens``."""
        with self._lock:
            self.remove([pk])
            part = self._parts.setdefault(key, _Partition())
            terms = Counter(tokens)
            slot = len(part.pk_at)
            part.slot_of[pk] = slot
            part.pk_at.append(pk)
            part.terms_at.append(terms)
            part.doc_len.append(len(tokens))
            part.len_array = None
            part.total_len += len(tokens)
            for term, tf in terms.items():
                postings = part.postings.setdefault(term, _Postings())
                postings.slots.append(slot)
                postings.tfs.append(tf)
                postings.arrays = None
                part.df[term] += 1
            self._where[pk] = key

    def remove(self, pks: list[int]) -> None:
        """Forget documents; unknown ids are ignored."""
        with self._lock:
            for pk in pks:
                key = self._where.pop(pk, None)
                if key is None:
                    continue
                part = self._parts[key]
                slot = part.slot_of.pop(pk)
                terms = part.terms_at[slot]
                assert terms is not None, f"slot {slot} of pk {pk} already free"
                for term in terms:
                    part.df[term] -= 1
                    if part.df[term] == 0:
                        del part.df[term]
                        del part.postings[term]
                part.total_len -= part.doc_len[slot]
                part.terms_at[slot] = None
                part.dead_slots.append(slot)
                if not part.slot_of:
                    del self._parts[key]
                elif len(part.dead_slots) > max(1024, len(part.slot_of)):
                    self._compact(key, part)

    def _compact(self, key: PartitionKey, part: _Partition) -> None:
        # Rebuild without freed slots so postings and score arrays stop growing.
        live = [(pk, part.terms_at[slot]) for pk, slot in part.slot_of.items()]
        del self._parts[key]
        for pk, terms in live:
            self._where.pop(pk, None)
            assert terms is not None
            self.upsert(key, pk, list(terms.elements()))

    def search(
        self,
        key: PartitionKey,
        tokens: list[str],
        k: int,
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` best ``(pk, bm25)`` in one partition for the query ``tokens``."""
        with self._lock:
            part = self._parts.get(key)
            if part is None or k <= 0 or not tokens:
                return []
            n_docs = len(part.slot_of)
            avg_len = part.total_len / n_docs if n_docs else 1.0
            if part.len_array is None:
                part.len_array = np.asarray(part.doc_len, dtype=np.float32)
            doc_len = part.len_array
            scores = np.zeros(len(part.pk_at), dtype=np.float32)
            for term, qtf in Counter(tokens).items():
                postings = part.postings.get(term)
                if postings is None:
                    continue
                if postings.arrays is None:
                    postings.arrays = (
                        np.asarray(postings.slots, dtype=np.int64),
                        np.asarray(postings.tfs, dtype=np.float32),
                    )
                slots, tfs = postings.arrays
                df = part.df[term]
                idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
                norm = self.k1 * (1.0 - self.b + self.b * doc_len[slots] / avg_len)
                # Slots are unique within one term's postings, so plain fancy-index add is exact.
                scores[slots] += qtf * idf * tfs * (self.k1 + 1.0) / (tfs + norm)
            if part.dead_slots:
                # Freed slots linger in the postings of terms other documents still use.
                scores[part.dead_slots] = 0.0
            if allowed is not None:
                mask = np.zeros(len(scores), dtype=bool)
                slots = [part.slot_of[pk] for pk in allowed.tolist() if pk in part.slot_of]
                mask[slots] = True
                scores[~mask] = 0.0
            hits = np.flatnonzero(scores > 0)
            if len(hits) > k:
                hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
            hits = hits[np.argsort(-scores[hits], kind="stable")]
            pk_at = part.pk_at
            return [(pk_at[s], float(scores[s])) for s in hits.tolist()]

    def partitions(self, tenant_id: str) -> list[PartitionKey]:
        with self._lock:
            return [key for key in self._parts if key[0] == tenant_id]

    def pks(self, key: PartitionKey) -> list[int]:
        """The documents of one partition."""
        with self._lock:
            part = self._parts.get(key)
            return [] if part is None else list(part.slot_of)

    def drop(self, key: PartitionKey) -> None:
        """Forget a whole partition (e.g. evicted from memory)."""
        with self._lock:
            part = self._parts.pop(key, None)
            if part is not None:
                for pk in part.slot_of:
                    self._where.pop(pk, None)

    def nbytes(self, key: PartitionKey) -> int:
        """About how much memory a partition takes: per document its slot, length and term
        counts; per token at most one posting (a slot and a frequency, Python ints in lists);
        per term its postings lists."""
        part = self._parts.get(key)
        if part is None:
            return 0
        # total_len (tokens) bounds the postings and is kept as documents come and go: O(1).
        return 200 * len(part.pk_at) + 100 * part.total_len + 120 * len(part.postings)

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._where.clear()
