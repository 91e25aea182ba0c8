"""faiss vector indexes, partitioned by (tenant, user), derived from SQL and snapshotted to disk.

A partition holds the vectors of one user of one tenant (user "" = memories without a user), so a
search never even looks at another tenant's vectors, and a user-scoped search touches only that
user's. Ids are the memories' integer primary keys. The index knows nothing about what the
vectors mean; :mod:`memsvc.retrieval.indexes` keeps it in step with the database.

Partitions are exact (``IndexFlatIP``) up to :attr:`Approximate.above` vectors; a larger one
switches to an inverted-file index (``IndexIVFFlat``, trained on its own vectors when it
crosses the threshold) that scans only the ``nprobe`` lists nearest the query. IVF keeps ids
and removals native (HNSW cannot remove), and a search restricted to an allow-list stays exact
(the allowed vectors are scored directly), so filters never cost recall.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

__all__ = ["Approximate", "PartitionKey", "VectorIndex"]

PartitionKey = tuple[str, str]  # (tenant_id, user_id or "")

_SNAPSHOT = "vectors.safetensors"
_thread_state = threading.local()


def _single_threaded_faiss() -> None:
    """Make faiss run single-threaded in the calling thread (OpenMP settings are per thread).

    One query at a time gains nothing from OpenMP, and its idle workers spin-wait on the cores
    torch needs for the next query's embedding: it doubled REST search latency when measured.
    """
    if not getattr(_thread_state, "configured", False):
        faiss.omp_set_num_threads(1)
        _thread_state.configured = True


_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Approximate:
    """When and how a partition switches from exact to approximate (IVF) search."""

    # A partition with more vectors than this is approximate (0: always exact).
    above: int = 0
    # IVF lists: ``lists_per_sqrt * sqrt(n)`` at the switch; each search scans the nearest
    # ``max(min_probe, probe_fraction * lists)`` of them.
    lists_per_sqrt: float = 4.0
    probe_fraction: float = 0.2
    min_probe: int = 16
    # k-means training: iterations, and at most this many sampled vectors per list.
    train_iterations: int = 10
    train_per_list: int = 64


@dataclass
class _Partition:
    index: Any  # faiss.IndexIDMap2 over IndexFlatIP, or an IndexIVFFlat when approximate
    pks: set[int] = field(default_factory=set)
    approximate: bool = False
    nprobe: int = 0
    quantizer: Any = None  # the IVF's coarse quantizer, kept alive beside it


class VectorIndex:
    """Inner-product search (cosine on unit vectors) over per-user partitions: exact, or
    approximate above ``approximate.above`` vectors."""

    def __init__(self, dim: int, approximate: Approximate | None = None) -> None:
        self.dim = dim
        self.approximate = approximate or Approximate()
        self._parts: dict[PartitionKey, _Partition] = {}
        self._where: dict[int, PartitionKey] = {}
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._where)

    def _new_partition(self) -> _Partition:
        return _Partition(faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim)))

    # -- approximate partitions ------------------------------------------------------------

    def _vectors_of(self, part: _Partition, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (all in ``part``), ``[len(ids), dim]``."""
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        if part.approximate:
            return part.index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))
        flat = part.index
        at = {int(pk): n for n, pk in enumerate(faiss.vector_to_array(flat.id_map))}
        rows = np.fromiter((at[int(pk)] for pk in ids), dtype=np.int64, count=len(ids))
        return flat.index.reconstruct_batch(rows)

    def _make_approximate(self, part: _Partition) -> None:
        """Rebuild a flat partition as an IVF index trained on its vectors (fixed seed)."""
        config = self.approximate
        ids = np.fromiter(sorted(part.pks), dtype=np.int64, count=len(part.pks))
        vectors = self._vectors_of(part, ids)
        # at most n / 39 lists: k-means wants 39 training points per centroid
        lists = max(1, min(len(ids) // 39, int(config.lists_per_sqrt * math.sqrt(len(ids)))))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, lists, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.niter = config.train_iterations
        ivf.cp.seed = 1234
        ivf.cp.max_points_per_centroid = config.train_per_list
        rng = np.random.default_rng(1234)
        sample = min(len(ids), lists * config.train_per_list)
        ivf.train(vectors[rng.choice(len(ids), sample, replace=False)])
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # removals and reconstructs by id
        ivf.add_with_ids(vectors, ids)
        part.index, part.quantizer, part.approximate = ivf, quantizer, True
        part.nprobe = min(lists, max(config.min_probe, int(config.probe_fraction * lists)))

    def _flat_copy(self, part: _Partition) -> Any:
        """An exact ``IndexIDMap2`` holding a partition's vectors (what snapshots store)."""
        if not part.approximate:
            return part.index
        ids = np.fromiter(sorted(part.pks), dtype=np.int64, count=len(part.pks))
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        flat.add_with_ids(self._vectors_of(part, ids), ids)
        return flat

    def _check_size(self, part: _Partition) -> None:
        above = self.approximate.above
        if above and not part.approximate and len(part.pks) > above:
            self._make_approximate(part)

    def is_approximate(self, key: PartitionKey) -> bool:
        part = self._parts.get(key)
        return part is not None and part.approximate

    def pks(self, key: PartitionKey) -> list[int]:
        """The ids in one partition."""
        with self._lock:
            part = self._parts.get(key)
            return [] if part is None else list(part.pks)

    def drop(self, key: PartitionKey) -> None:
        """Forget a whole partition (e.g. evicted from memory)."""
        with self._lock:
            part = self._parts.pop(key, None)
            if part is not None:
                for pk in part.pks:
                    self._where.pop(pk, None)

    def nbytes(self, key: PartitionKey) -> int:
        """About how much memory a partition takes (vectors, ids, IVF centroids)."""
        part = self._parts.get(key)
        if part is None:
            return 0
        per_vector = 4 * self.dim + 8 + 48  # the vector, its id, the id map / direct map
        centroids = 4 * self.dim * part.index.nlist if part.approximate else 0
        return len(part.pks) * per_vector + centroids

    def upsert(self, key: PartitionKey, pks: np.ndarray, vectors: np.ndarray) -> None:
        """Insert or replace the vectors of ``pks`` (``[n]`` int64, ``[n, dim]`` float32)."""
        pks = np.ascontiguousarray(pks, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(pks), self.dim):
            raise ValueError(f"vectors shape {vectors.shape} != ({len(pks)}, {self.dim})")
        with self._lock:
            self.remove(pks)
            part = self._parts.get(key)
            if part is None:
                part = self._parts[key] = self._new_partition()
            part.index.add_with_ids(vectors, pks)
            for pk in pks.tolist():
                part.pks.add(pk)
                self._where[pk] = key
            self._check_size(part)

    def remove(self, pks: np.ndarray | list[int]) -> None:
        """Drop the vectors of ``pks``; unknown ids are ignored."""
        with self._lock:
            by_part: dict[PartitionKey, list[int]] = {}
            for pk in np.asarray(pks, dtype=np.int64).tolist():
                key = self._where.pop(pk, None)
                if key is not None:
                    by_part.setdefault(key, []).append(pk)
            for key, ids in by_part.items():
                part = self._parts[key]
                part.index.remove_ids(np.asarray(ids, dtype=np.int64))
                part.pks.difference_update(ids)
                if not part.pks:
                    del self._parts[key]

    def partitions(self, tenant_id: str) -> list[PartitionKey]:
        """The partitions of one tenant."""
        with self._lock:
            return [key for key in self._parts if key[0] == tenant_id]

    def tenant_sizes(self) -> dict[str, int]:
        """Vectors per tenant (the metrics' index sizes)."""
        sizes: dict[str, int] = {}
        with self._lock:
            for key, part in self._parts.items():
                sizes[key[0]] = sizes.get(key[0], 0) + len(part.pks)
        return sizes

    def size(self, key: PartitionKey) -> int:
        part = self._parts.get(key)
        return 0 if part is None else len(part.pks)

    def search(
        self,
        key: PartitionKey,
        query: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest ``(pk, cosine)`` in one partition, best first.

        ``allowed`` (int64 pks) restricts the search to those ids (faiss ID selector).
        """
        _single_threaded_faiss()
        with self._lock:
            part = self._parts.get(key)
            if part is None or k <= 0:
                return []
            q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
            if part.approximate:
                return self._search_approximate(part, q, k, allowed)
            params = None
            if allowed is not None:
                if len(allowed) == 0:
                    return []
                selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
                params = faiss.SearchParameters(sel=selector)
            k = min(k, len(part.pks))
            scores, ids = part.index.search(q, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _search_approximate(
        self, part: _Partition, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> list[tuple[int, float]]:
        if allowed is None:
            params = faiss.SearchParametersIVF(nprobe=part.nprobe)
            scores, ids = part.index.search(q, min(k, len(part.pks)), params=params)
            return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        # Filtered: score the allowed vectors exactly (a filter never costs recall).
        wanted = np.unique(np.asarray(allowed, dtype=np.int64)).tolist()
        ids = np.fromiter((pk for pk in wanted if pk in part.pks), dtype=np.int64)
        if not len(ids):
            return []
        scores = self._vectors_of(part, ids) @ q[0]
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(ids[n]), float(scores[n])) for n in top]

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._where.clear()

    # -- snapshots -------------------------------------------------------------------------

    def serialize(self) -> tuple[dict[str, np.ndarray], list[list[str]]]:
        """A copy of every partition (fast, under the lock) for :meth:`write_snapshot`."""
        with self._lock:
            tensors = {
                f"p{n}": faiss.serialize_index(self._flat_copy(part))
                for n, part in enumerate(self._parts.values())
            }
            keys = [list(key) for key in self._parts]
        return tensors, keys

    def write_snapshot(
        self,
        directory: Path,
        serialized: tuple[dict[str, np.ndarray], list[list[str]]],
        state: dict[str, Any],
    ) -> None:
        """Write a :meth:`serialize` copy and ``state`` (JSON-able) atomically, without the lock."""
        tensors, keys = serialized
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "version": str(_FORMAT_VERSION),
            "dim": str(self.dim),
            "partitions": json.dumps(keys),
            "state": json.dumps(state),
        }
        tmp = directory / f"{_SNAPSHOT}.{os.getpid()}.{threading.get_ident()}.tmp"
        save_file(tensors or {"empty": np.zeros(1, dtype=np.uint8)}, str(tmp), metadata=meta)
        os.replace(tmp, directory / _SNAPSHOT)

    def save(self, directory: Path, state: dict[str, Any]) -> None:
        """Snapshot every partition and ``state`` to ``directory``."""
        self.write_snapshot(directory, self.serialize(), state)

    def load(self, directory: Path) -> dict[str, Any] | None:
        """Load a snapshot; returns its state, or ``None`` when absent or unusable."""
        path = directory / _SNAPSHOT
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="numpy") as handle:
                meta = handle.metadata() or {}
            if meta.get("version") != str(_FORMAT_VERSION) or meta.get("dim") != str(self.dim):
                return None
            tensors = load_file(str(path))
            keys = json.loads(meta["partitions"])
            state = json.loads(meta["state"])
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            # A damaged snapshot is not an error: the index is derived and rebuilt from SQL.
            _log_bad_snapshot(path, exc)
            return None
        with self._lock:
            self.clear()
            for n, key in enumerate(keys):
                index = faiss.deserialize_index(tensors[f"p{n}"])
                part = _Partition(index)
                ids = faiss.vector_to_array(index.id_map)
                part.pks.update(ids.tolist())
                self._parts[(key[0], key[1])] = part
                for pk in part.pks:
                    self._where[pk] = (key[0], key[1])
                self._check_size(part)
        return state


def _log_bad_snapshot(path: Path, exc: Exception) -> None:
    import logging

    logging.getLogger(__name__).warning("ignoring unreadable index snapshot %s: %s", path, exc)
