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
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse

from memsvc.config.retrieval import RetrievalConfig
from memsvc.retrieval.fusion import Ranked
from stores.vector_index import PartitionKey

__all__ = ["GraphCache", "UserGraph", "graph_neighbours"]

_WORD = re.compile(r"[\w']+")
_MAX_CACHED = 256  # users whose graphs stay in memory

#: A user's graph as read from SQL: the entity graph and, per entity pk, its memory pks.
GraphRows = tuple[nx.Graph, dict[int, list[int]]]


@dataclass(frozen=True)
class UserGraph:
    """One user's entity graph, ready to rank: built once per index watermark."""

    graph: nx.Graph
    mentions: dict[int, list[int]]  # entity pk -> memory pks
    names: dict[str, int]  # lower-cased entity name -> pk
    nodes: list[int]
    position: dict[int, int]  # entity pk -> row of ``transition``
    transition: scipy.sparse.csr_array  # row-normalised adjacency (PageRank's walk)
    dangling: np.ndarray  # rows without edges
    linked: int  # memories that mention any entity

    @classmethod
    def build(cls, graph: nx.Graph, mentions: dict[int, list[int]]) -> UserGraph:
        nodes = list(graph)
        names = {str(data["name"]).lower(): pk for pk, data in graph.nodes(data=True)}
        if nodes:
            adjacency = nx.to_scipy_sparse_array(graph, nodelist=nodes, dtype=float)
        else:  # networkx refuses an empty graph
            adjacency = scipy.sparse.csr_array((0, 0))
        out = np.asarray(adjacency.sum(axis=1)).ravel()
        inverse = np.divide(1.0, out, out=np.zeros_like(out), where=out != 0)
        transition = scipy.sparse.csr_array(scipy.sparse.diags_array(inverse) @ adjacency)
        return cls(
            graph=graph,
            mentions=mentions,
            names=names,
            nodes=nodes,
            position={pk: i for i, pk in enumerate(nodes)},
            transition=transition,
            dangling=np.flatnonzero(out == 0),
            linked=len({m for pks in mentions.values() for m in pks}),
        )

    def pagerank(
        self, seeds: set[int], *, alpha: float = 0.85, max_iter: int = 50, tol: float = 1e-4
    ) -> dict[int, float]:
        """Personalised PageRank from ``seeds``: networkx's power iteration (same result as
        ``nx.pagerank``), on the cached walk instead of a matrix rebuilt per query."""
        n = len(self.nodes)
        if n == 0:
            return {}
        p = np.zeros(n)
        p[[self.position[s] for s in seeds]] = 1.0
        p /= p.sum()
        x = np.full(n, 1.0 / n)
        for _ in range(max_iter):
            last = x
            x = alpha * (x @ self.transition + x[self.dangling].sum() * p) + (1 - alpha) * p
            if np.abs(x - last).sum() < n * tol:
                return dict(zip(self.nodes, x.tolist(), strict=True))
        raise nx.PowerIterationFailedConvergence(max_iter)


class GraphCache:
    """Per-partition graphs, rebuilt when the index watermark moved (any memory write)."""

    def __init__(self) -> None:
        self._graphs: dict[PartitionKey, tuple[tuple[int, int], UserGraph]] = {}
        self._lock = threading.Lock()

    def get(
        self,
        key: PartitionKey,
        *,
        watermark: tuple[int, int],
        load: Callable[[], GraphRows],
        cache: bool = True,
    ) -> UserGraph:
        """The graph of one user: cached while the index ``watermark`` stays the same;
        ``load`` reads it from SQL otherwise. ``cache=False`` (a graph of the past, ``as_of``)
        builds one that is not kept."""
        with self._lock:
            cached = self._graphs.get(key)
            if cache and cached is not None and cached[0] == watermark:
                return cached[1]
        built = UserGraph.build(*load())
        if cache:
            with self._lock:
                if len(self._graphs) >= _MAX_CACHED and key not in self._graphs:
                    self._graphs.pop(next(iter(self._graphs)))  # the oldest entry
                self._graphs[key] = (watermark, built)
        return built


def _seeds(query: str, names: dict[str, int], max_ngram: int) -> set[int]:
    words = [w.lower() for w in _WORD.findall(query)]
    found = set()
    for n in range(1, max_ngram + 1):
        for i in range(len(words) - n + 1):
            pk = names.get(" ".join(words[i : i + n]))
            if pk is not None:
                found.add(pk)
    return found


def graph_neighbours(
    user_graph: UserGraph,
    query: str,
    allowed: np.ndarray | None,
    *,
    depth: int,
    config: RetrievalConfig,
) -> Ranked:
    """``[(memory pk, score)]`` best first, among the ``allowed`` pks (all when None); empty
    when the query names no entity of the graph but hubs."""
    mentions, linked = user_graph.mentions, user_graph.linked
    if not linked:
        return []
    hub = max(2, config.graph_hub_share * linked)
    names = _seeds(query, user_graph.names, config.graph_max_ngram)
    seeds = {s for s in names if len(mentions.get(s, ())) <= hub}
    if not seeds:
        return []
    rank = user_graph.pagerank(seeds)
    allowed_set = None if allowed is None else set(allowed.tolist())
    scores: dict[int, float] = {}
    for entity, pks in mentions.items():
        weight = rank.get(entity, 0.0) * math.log(1 + linked / len(pks))
        if weight <= 0:
            continue
        for pk in pks:
            if allowed_set is None or pk in allowed_set:
                scores[pk] = scores.get(pk, 0.0) + weight
    # A short list: past its head, the graph ranks by hubs and only adds noise to the fusion.
    best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return list(best[: min(depth, config.graph_list_length)])
