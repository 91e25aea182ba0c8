"""Graph retrieval: memories near the query's entities, by personalised PageRank.

The entities named in the query seed a PageRank over the user's entity graph (relations valid
at ``as_of``, and co-mention in one memory). Each memory scores the rank of the entities it
mentions, weighted by how specific they are (an entity in every memory, like the user
themself, says nothing). Hub entities do not seed: a query naming only them gets no graph list.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Hashable
from datetime import datetime

import networkx as nx
import numpy as np

from memsvc.service.deps import ServiceDeps
from stores import graph as store
from stores.vector_index import PartitionKey

__all__ = ["GraphCache", "graph_neighbours"]

_WORD = re.compile(r"[\w']+")
# An entity mentioned by more than this share of the user's memories is a hub.
_HUB_SHARE = 0.2
_MAX_NGRAM = 4
_MAX_CACHED = 256  # users whose graphs stay in memory
LIST_LENGTH = 10


class GraphCache:
    """Per-partition graphs, rebuilt when the index watermark moved (any memory write)."""

    def __init__(self) -> None:
        self._graphs: dict[PartitionKey, tuple[tuple[int, int], nx.Graph, dict, dict]] = {}
        self._lock = threading.Lock()

    def get(
        self, deps: ServiceDeps, key: PartitionKey, as_of: datetime | None
    ) -> tuple[nx.Graph, dict[int, list[int]], dict[str, int]]:
        """(graph, entity pk -> memory pks, entity key -> pk) of one user."""
        watermark = deps.indexes.watermark
        with self._lock:
            cached = self._graphs.get(key)
            if as_of is None and cached is not None and cached[0] == watermark:
                return cached[1], cached[2], cached[3]
        with deps.sessions() as session:
            graph, mentions = store.partition_graph(key[0], key[1], as_of=as_of, session=session)
        names = {str(data["name"]).lower(): pk for pk, data in graph.nodes(data=True)}
        if as_of is None:
            with self._lock:
                if len(self._graphs) >= _MAX_CACHED and key not in self._graphs:
                    self._graphs.pop(next(iter(self._graphs)))  # the oldest entry
                self._graphs[key] = (watermark, graph, mentions, names)
        return graph, mentions, names


def _seeds(query: str, names: dict[str, int]) -> set[int]:
    words = [w.lower() for w in _WORD.findall(query)]
    found = set()
    for n in range(1, _MAX_NGRAM + 1):
        for i in range(len(words) - n + 1):
            pk = names.get(" ".join(words[i : i + n]))
            if pk is not None:
                found.add(pk)
    return found


def graph_neighbours(
    deps: ServiceDeps,
    query: str,
    candidates: dict[PartitionKey, np.ndarray | None],
    *,
    as_of: datetime | None,
    depth: int,
) -> list[tuple[Hashable, float]]:
    """``[(memory pk, score)]`` best first; empty unless the search is one user's."""
    if deps.settings.consolidation.graph_weight <= 0 or len(candidates) != 1:
        return []
    ((key, allowed),) = candidates.items()
    graph, mentions, names = deps.graph_cache.get(deps, key, as_of)
    linked = {m for pks in mentions.values() for m in pks}
    if not linked:
        return []
    hub = max(2, _HUB_SHARE * len(linked))
    seeds = {s for s in _seeds(query, names) if len(mentions.get(s, ())) <= hub}
    if not seeds:
        return []
    rank = nx.pagerank(graph, personalization=dict.fromkeys(seeds, 1.0), max_iter=50, tol=1e-4)
    allowed_set = None if allowed is None else set(allowed.tolist())
    scores: dict[int, float] = {}
    for entity, pks in mentions.items():
        weight = rank.get(entity, 0.0) * math.log(1 + len(linked) / len(pks))
        if weight <= 0:
            continue
        for pk in pks:
            if allowed_set is None or pk in allowed_set:
                scores[pk] = scores.get(pk, 0.0) + weight
    # A short list: past its head, the graph ranks by hubs and only adds noise to the fusion.
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[: min(depth, LIST_LENGTH)]
