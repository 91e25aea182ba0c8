"""Two small collaborators of the service: the retrieval log and the collector freezer."""

from __future__ import annotations

import gc
import threading
from collections import Counter

__all__ = ["AccessLog", "GcFreezer"]

# Index changes applied between two freezes of the collector's view: each costs one full
# collection, as often as a write-heavy service would run one anyway.
REFREEZE_CHANGES = 20_000


class AccessLog:
    """Retrievals counted in memory (memory id -> count), written to SQL in batches by the
    maintenance tick (reinforcement against decay is not urgent)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, memory_ids: list[str]) -> None:
        with self._lock:
            self._counts.update(memory_ids)

    def take(self) -> dict[str, int]:
        """What was counted since the last take, and start again."""
        with self._lock:
            taken, self._counts = dict(self._counts), Counter()
        return taken


class GcFreezer:
    """Keeps long-lived index objects out of the collector's full collections.

    ``gc.collect(); gc.freeze()`` once the derived indexes are loaded, and again once they have
    grown by ``REFREEZE_CHANGES`` since: index entries live as long as the process, and a full
    collection walking half a million of them stalled a search for ~0.3 s. Collecting first
    keeps garbage cycles out of the frozen generation. Process-wide (``MEMSVC_GC_FREEZE``).
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._unfrozen = 0

    def loaded(self) -> None:
        """The indexes were just loaded: freeze what they hold."""
        self._freeze()

    def grew(self, changes: int) -> None:
        """The indexes took ``changes`` more: freeze again once they add up."""
        self._unfrozen += changes
        if self._unfrozen >= REFREEZE_CHANGES:
            self._freeze()

    def _freeze(self) -> None:
        self._unfrozen = 0
        if self.enabled:
            gc.collect()
            gc.freeze()
