"""Stage 1, candidates: which index partitions a search reads and which memories it may see."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memsvc.retrieval.indexes import partition_of
from memsvc.schemas import MemoryFilter
from memsvc.service.deps import ServiceDeps
from memsvc.service.memories import to_query
from stores import memories as store
from stores.vector_index import PartitionKey

__all__ = ["Candidates", "find_candidates"]


@dataclass(frozen=True)
class Candidates:
    """The partitions to search and, when filters narrow them, the allowed ids in each."""

    partitions: dict[PartitionKey, np.ndarray | None]

    @property
    def allowed(self) -> set[int] | None:
        """Every memory the request's filters allow; None when whole partitions are searched
        (a neighbouring turn shares its turn's session, so its tenant and user too)."""
        if self.partitions and all(pks is None for pks in self.partitions.values()):
            return None
        return {int(pk) for pks in self.partitions.values() if pks is not None for pk in pks}

    def one_partition(self) -> tuple[PartitionKey, np.ndarray | None] | None:
        """The only partition searched (one user's search), else None."""
        if len(self.partitions) != 1:
            return None
        return next(iter(self.partitions.items()))


def find_candidates(deps: ServiceDeps, tenant_id: str, filters: MemoryFilter) -> Candidates:
    """Filters on the user alone pick a partition; any other filter (agent, session, kind,
    metadata, time) is evaluated by SQL into an allow-list, so listing and search share one
    implementation of filter semantics."""
    if not filters.needs_candidates():
        if filters.user_id is not None:
            return Candidates({partition_of(tenant_id, filters.user_id): None})
        return Candidates(dict.fromkeys(deps.indexes.partitions(tenant_id)))
    with deps.sessions() as session:
        rows = store.candidate_pks(to_query(tenant_id, filters), session=session)
    grouped: dict[PartitionKey, list[int]] = {}
    for pk, user in rows:
        grouped.setdefault(partition_of(tenant_id, user), []).append(pk)
    return Candidates({key: np.asarray(pks, dtype=np.int64) for key, pks in grouped.items()})
