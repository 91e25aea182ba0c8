"""Which search partitions a replica holds in memory: loaded on first search, the least recently
searched evicted beyond a memory budget, and never one that a search is using.

Pure bookkeeping (keys, estimated sizes, recency, pins); :class:`~memsvc.retrieval.indexes.
DerivedIndexes` does the loading and evicting, under its own lock.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable

from stores.vector_index import PartitionKey

__all__ = ["PartitionCache"]


class PartitionCache:
    """Loaded partitions in least-recently-used order, with their estimated bytes."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._sizes: OrderedDict[PartitionKey, int] = OrderedDict()
        self._pins: Counter[PartitionKey] = Counter()
        self.loads = 0  # partitions loaded so far (a reload after eviction counts again)
        self.evictions = 0

    def __contains__(self, key: object) -> bool:
        return key in self._sizes

    def __len__(self) -> int:
        return len(self._sizes)

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes.values())

    def keys(self) -> list[PartitionKey]:
        """Loaded partitions, least recently used first."""
        return list(self._sizes)

    def added(self, key: PartitionKey, nbytes: int = 0) -> None:
        """``key`` was loaded (it is the most recently used)."""
        self._sizes[key] = nbytes
        self._sizes.move_to_end(key)
        self.loads += 1

    def resize(self, key: PartitionKey, nbytes: int) -> None:
        if key in self._sizes:
            self._sizes[key] = nbytes

    def pin(self, keys: Iterable[PartitionKey]) -> None:
        """A search uses ``keys``: most recently used, and not evicted until unpinned."""
        for key in keys:
            self._pins[key] += 1
            if key in self._sizes:
                self._sizes.move_to_end(key)

    def unpin(self, keys: Iterable[PartitionKey]) -> None:
        for key in keys:
            self._pins[key] -= 1
            if self._pins[key] <= 0:
                del self._pins[key]

    def victims(self) -> list[PartitionKey]:
        """The least recently used unpinned partitions to evict so the rest fit the budget
        (pinned ones may keep the total above it)."""
        total, chosen = self.total_bytes, []
        for key, nbytes in self._sizes.items():
            if total <= self.budget_bytes:
                break
            if self._pins[key] > 0:
                continue
            chosen.append(key)
            total -= nbytes
        return chosen

    def forget(self, key: PartitionKey) -> None:
        """``key`` was evicted (or the index cleared)."""
        if self._sizes.pop(key, None) is not None:
            self.evictions += 1

    def clear(self) -> None:
        self._sizes.clear()
