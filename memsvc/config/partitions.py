"""How a replica holds the derived search partitions (``MEMSVC_PARTITIONS__*``): loaded when
first searched and kept within a memory budget, exact search up to a size threshold and
approximate (IVF) above it."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["PartitionsConfig"]

GiB = 1 << 30


class PartitionsConfig(BaseModel):
    """``MEMSVC_PARTITIONS__<NAME>`` in the environment."""

    # Load a (tenant, user) partition's vectors and postings when it is first searched, so
    # start-up does not grow with the dataset. False: load every partition at start (and
    # snapshot the vectors to the data directory, MEMSVC_INDEX_SNAPSHOT_SECONDS).
    on_demand: bool = True
    # Estimated memory of the partitions kept loaded (vectors, sentence vectors, BM25
    # postings); beyond it the least recently searched are evicted (reloaded when searched).
    # Partitions a search is using are never evicted, so one search larger than the budget
    # still runs.
    memory_budget_bytes: int = Field(default=2 * GiB, ge=0)
    # A partition holding more vectors than this searches an IVF index (approximate; recall@10
    # against exact >= 0.98 measured at the defaults) instead of scanning every vector; 0:
    # always exact. Filtered searches stay exact.
    approximate_above: int = Field(default=100_000, ge=0)
    # IVF shape: lists_per_sqrt * sqrt(n) lists; a search scans probe_fraction of them (at
    # least min_probe).
    ivf_lists_per_sqrt: float = Field(default=4.0, gt=0)
    ivf_probe_fraction: float = Field(default=0.2, gt=0, le=1)
    ivf_min_probe: int = Field(default=16, ge=1)
