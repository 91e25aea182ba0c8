"""Hybrid search over long-term memory: dense (faiss) + lexical (BM25) + graph, fused.

Dense scores a memory by the better of its whole text and its best sentence; fused scores then
spread to neighbouring turns of a conversation; long results carry a query-focused snippet.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from memsvc.errors import InvalidRequestError
from memsvc.retrieval.fusion import Fused, FusionMethod, fuse
from memsvc.retrieval.graph import graph_neighbours
from memsvc.retrieval.indexes import partition_of
from memsvc.retrieval.sentences import snippet
from memsvc.retrieval.short_term import as_memory, scoped_pieces, score_pieces
from memsvc.retrieval.text import tokenize
from memsvc.retrieval.turns import spread_to_neighbours
from memsvc.schemas import SearchRequest, SearchResponse, SearchResult
from memsvc.service.deps import ServiceDeps
from memsvc.service.memories import to_public, to_query
from memsvc.service.validation import check_text
from stores import memories as store
from stores.short_term import Piece
from stores.vector_index import PartitionKey

__all__ = ["search_memories"]

# How many candidates each retriever contributes before fusion, relative to top_k.
_DEPTH_FACTOR = 3
# Rows read beyond what top_k still needs, for the ones left out (archived, deleted).
_SPARE_ROWS = 8


def _candidates(
    deps: ServiceDeps, tenant_id: str, request: SearchRequest
) -> dict[PartitionKey, np.ndarray | None]:
    """The partitions to search and, when filters narrow them, the allowed ids in each."""
    filters = request.filters
    if not filters.needs_candidates():
        if filters.user_id is not None:
            return {partition_of(tenant_id, filters.user_id): None}
        keys = set(deps.indexes.vectors.partitions(tenant_id))
        keys.update(deps.indexes.lexical.partitions(tenant_id))
        return dict.fromkeys(keys)
    with deps.sessions() as session:
        rows = store.candidate_pks(to_query(tenant_id, filters), session=session)
    grouped: dict[PartitionKey, list[int]] = {}
    for pk, user in rows:
        grouped.setdefault(partition_of(tenant_id, user), []).append(pk)
    return {key: np.asarray(pks, dtype=np.int64) for key, pks in grouped.items()}


def _within(
    spread: dict[Hashable, float],
    scored: dict[Hashable, float],
    candidates: dict[PartitionKey, np.ndarray | None],
) -> dict[Hashable, float]:
    """Drop neighbours the request's filters exclude (a neighbour was not filtered yet)."""
    if all(allowed is None for allowed in candidates.values()):
        return spread
    allowed = {int(pk) for pks in candidates.values() if pks is not None for pk in pks}
    return {pk: s for pk, s in spread.items() if pk in scored or pk in allowed}


def _best(hits: list[tuple[Hashable, float]], limit: int) -> list[tuple[Hashable, float]]:
    return sorted(hits, key=lambda h: (-h[1], str(h[0])))[:limit]


def search_memories(deps: ServiceDeps, tenant_id: str, request: SearchRequest) -> SearchResponse:
    """The ``top_k`` memories of the tenant most relevant to ``request.query``."""
    check_text(deps.settings, request.query, "query")
    if request.top_k > deps.settings.max_top_k:
        raise InvalidRequestError(
            f"top_k is {request.top_k}; the limit is {deps.settings.max_top_k}", field="top_k"
        )
    deps.indexes.sync()
    query_vector = deps.embedder.embed_query(request.query)
    query_tokens = tokenize(request.query)
    config = deps.settings.retrieval
    depth = max(request.top_k * _DEPTH_FACTOR, config.min_depth)
    dense: list[tuple[Hashable, float]] = []
    lexical: list[tuple[Hashable, float]] = []
    candidates = _candidates(deps, tenant_id, request)
    for key, allowed in candidates.items():
        dense += deps.indexes.dense_search(key, query_vector, depth, allowed)
        lexical += deps.indexes.lexical.search(key, query_tokens, depth, allowed)
    pieces = {p.id: p for p in scoped_pieces(deps.short_term, tenant_id, request.filters)}
    st_dense, st_lexical = score_pieces(list(pieces.values()), query_vector, query_tokens, depth)
    graph = graph_neighbours(
        deps, request.query, candidates, as_of=request.filters.as_of, depth=depth
    )
    weights = config.neighbour_weights()
    fused = fuse(
        _best(dense + st_dense, depth),
        _best(lexical + st_lexical, depth),
        method=FusionMethod(request.fusion or config.fusion),
        # Archived memories are dropped below: take a few more so top_k stays full.
        limit=request.top_k + 4 * _SPARE_ROWS,
        graph=graph,
        graph_weight=deps.settings.consolidation.graph_weight,
        spread=lambda scores: _within(
            spread_to_neighbours(scores, deps.indexes.turns, weights), scores, candidates
        ),
    )
    if request.threshold is not None:
        fused = [f for f in fused if f.score >= request.threshold]
    results: list[SearchResult] = []
    repeats: list[SearchResult] = []
    covered: set[str] = set()
    position = 0
    # Load rows a window at a time: most searches need top_k plus a few (archived, deleted).
    while len(results) < request.top_k and position < len(fused):
        window = fused[position : position + request.top_k - len(results) + _SPARE_ROWS]
        position += len(window)
        for result in _results(deps, tenant_id, request, window, pieces, query_vector):
            # Near-duplicates (a fact restating a message already shown, an episode quoting
            # turns already shown) go after the results that bring new events.
            sources = set(result.memory.source_event_ids)
            if sources and sources <= covered:
                repeats.append(result)
            else:
                results.append(result)
                covered |= sources
    results = (results + repeats)[: request.top_k]
    return SearchResponse(data=results, count=len(results))


def _results(
    deps: ServiceDeps,
    tenant_id: str,
    request: SearchRequest,
    fused: list[Fused],
    pieces: dict[str, Piece],
    query_vector: np.ndarray,
) -> list[SearchResult]:
    """Results for fused hits, in order: archived, deleted and promoted pieces left out."""
    config = deps.settings.retrieval
    with deps.sessions() as session:
        rows = store.result_rows_by_pks(
            tenant_id, [f.pk for f in fused if isinstance(f.pk, int)], session=session
        )
    promoted = {e for row in rows.values() for e in row.source_event_ids or ()}
    results = []
    for f in fused:
        if f.pk in rows and rows[f.pk].archived_at and not request.filters.include_archived:
            continue  # decayed: out of default search
        if f.pk in rows:
            memory, tier = to_public(rows[f.pk]), "long_term"
        elif f.pk in pieces and pieces[f.pk].event_id not in promoted:
            memory, tier = as_memory(pieces[f.pk]), "short_term"
        else:
            continue  # deleted since the index synced, or just promoted (shown long-term)
        text_snippet = None
        if tier == "long_term" and config.snippet_words:
            row = rows[f.pk]
            text_snippet = snippet(
                row.text, row.sentence_vectors, query_vector, config.snippet_words
            )
        results.append(
            SearchResult(
                memory=memory,
                snippet=text_snippet,
                score=f.score,
                dense_score=f.dense_score,
                lexical_score=f.lexical_score,
                graph_score=f.graph_score,
                tier=tier,
            )
        )
    return results
