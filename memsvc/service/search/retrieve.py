"""Stage 2, retrieve: each enabled retriever's ranked list over the candidates.

Long-term memories come from the derived indexes, working-memory pieces of the sessions in
scope are scored beside them (dense and lexical), and the graph list joins for one user's
search whose query names entities of that user's graph.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from memsvc.config.retrieval import RetrievalConfig, Retriever
from memsvc.retrieval.fusion import Ranked
from memsvc.retrieval.graph import GraphRows, graph_neighbours
from memsvc.retrieval.short_term import scoped_pieces, score_pieces
from memsvc.retrieval.text import tokenize
from memsvc.schemas import SearchRequest
from memsvc.service.deps import ServiceDeps
from memsvc.service.search.candidates import Candidates
from stores import graph as graph_store
from stores.short_term import Piece
from stores.vector_index import PartitionKey

__all__ = ["Query", "Retrieved", "retrieve"]


@dataclass(frozen=True)
class Query:
    """The query as every retriever reads it."""

    text: str
    vector: np.ndarray
    tokens: list[str]

    @classmethod
    def embed(cls, deps: ServiceDeps, text: str) -> Query:
        return cls(text, deps.embedder.embed_query(text), tokenize(text))


@dataclass
class Retrieved:
    """The ranked lists to fuse (in fusion order) and the working-memory pieces they name."""

    lists: dict[Retriever, Ranked] = field(default_factory=dict)
    pieces: dict[str, Piece] = field(default_factory=dict)


def _best(hits: Ranked, limit: int) -> Ranked:
    return sorted(hits, key=lambda h: (-h[1], str(h[0])))[:limit]


def retrieve(
    deps: ServiceDeps,
    tenant_id: str,
    request: SearchRequest,
    query: Query,
    candidates: Candidates,
    config: RetrievalConfig,
) -> Retrieved:
    """Each enabled retriever's list, ``config.depth(top_k)`` deep."""
    depth = config.depth(request.top_k)
    weights = config.weights()
    found = Retrieved()
    found.pieces = {p.id: p for p in scoped_pieces(deps.short_term, tenant_id, request.filters)}
    st_dense, st_lexical = score_pieces(
        list(found.pieces.values()), query.vector, query.tokens, depth
    )
    if Retriever.DENSE in weights:
        dense: Ranked = []
        for key, allowed in candidates.partitions.items():
            dense += deps.indexes.dense_search(key, query.vector, depth, allowed)
        found.lists[Retriever.DENSE] = _best(dense + st_dense, depth)
    if Retriever.LEXICAL in weights:
        lexical: Ranked = []
        for key, allowed in candidates.partitions.items():
            lexical += deps.indexes.lexical.search(key, query.tokens, depth, allowed)
        found.lists[Retriever.LEXICAL] = _best(lexical + st_lexical, depth)
    if Retriever.GRAPH in weights:
        graph = _graph_list(deps, request, query, candidates, config, depth)
        if graph:  # an empty list abstains: scores keep their meaning
            found.lists[Retriever.GRAPH] = graph
    return found


def _graph_list(
    deps: ServiceDeps,
    request: SearchRequest,
    query: Query,
    candidates: Candidates,
    config: RetrievalConfig,
    depth: int,
) -> list[tuple[Hashable, float]]:
    """The graph list of a one-user search (the graph is per user)."""
    one = candidates.one_partition()
    if one is None:
        return []
    key, allowed = one
    as_of = request.filters.as_of

    def load() -> GraphRows:
        return _read_graph(deps, key, request)

    user_graph = deps.graph_cache.get(
        key, watermark=deps.indexes.watermark, load=load, cache=as_of is None
    )
    return list(graph_neighbours(user_graph, query.text, allowed, depth=depth, config=config))


def _read_graph(deps: ServiceDeps, key: PartitionKey, request: SearchRequest) -> GraphRows:
    with deps.sessions() as session:
        return graph_store.partition_graph(
            key[0], key[1], as_of=request.filters.as_of, session=session
        )
