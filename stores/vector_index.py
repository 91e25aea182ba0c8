"""faiss vector indexes, partitioned by (tenant, user), derived from SQL and snapshotted to disk.

A partition holds the vectors of one user of one tenant (user "" = memories without a user), so a
search never even looks at another tenant's vectors, and a user-scoped search touches only that
user's. Ids are the memories' integer primary keys. The index knows nothing about what the
vectors mean; :mod:`memsvc.retrieval.indexes` keeps it in step with the database.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

__all__ = ["PartitionKey", "VectorIndex"]

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


@dataclass
class _Partition:
    index: Any  # faiss.IndexIDMap2 over an exact inner-product index
    pks: set[int] = field(default_factory=set)


class VectorIndex:
    """Exact inner-product search (cosine on unit vectors) over per-user partitions."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._parts: dict[PartitionKey, _Partition] = {}
        self._where: dict[int, PartitionKey] = {}
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._where)

    def _new_partition(self) -> _Partition:
        return _Partition(faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim)))

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
            params = None
            if allowed is not None:
                if len(allowed) == 0:
                    return []
                selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
                params = faiss.SearchParameters(sel=selector)
            k = min(k, len(part.pks))
            q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dim)
            scores, ids = part.index.search(q, k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._where.clear()

    # -- snapshots -------------------------------------------------------------------------

    def serialize(self) -> tuple[dict[str, np.ndarray], list[list[str]]]:
        """A copy of every partition (fast, under the lock) for :meth:`write_snapshot`."""
        with self._lock:
            tensors = {
                f"p{n}": faiss.serialize_index(part.index)
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
        return state


def _log_bad_snapshot(path: Path, exc: Exception) -> None:
    import logging

    logging.getLogger(__name__).warning("ignoring unreadable index snapshot %s: %s", path, exc)
