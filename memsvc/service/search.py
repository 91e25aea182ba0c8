"""Hybrid search over long-term memory: dense (faiss) + lexical (BM25) + graph, fused.

Dense scores a memory by the better of its whole text and its best sentence; fused scores then
spread to neighbouring turns of a conversation; long results carry a query-focused snippet.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sqlalchemy import Row

from memsvc.errors import InvalidRequestError
from memsvc.retrieval.fusion import Fused, FusionMethod, fuse
from memsvc.retrieval.graph import graph_neighbours
from memsvc.retrieval.indexes import partition_of
from memsvc.retrieval.sentences import RankedSentences, quoted_whole, rank_sentences
from memsvc.retrieval.short_term import as_memory, scoped_pieces, score_pieces
from memsvc.retrieval.text import tokenize
from memsvc.retrieval.turns import spread_to_neighbours
from memsvc.schemas import ContextTurn, SearchRequest, SearchResponse, SearchResult
from memsvc.service.deps import ServiceDeps
from memsvc.service.memories import to_public, to_query
from memsvc.service.validation import check_filter, check_text
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


def _allowed_pks(candidates: dict[PartitionKey, np.ndarray | None]) -> set[int] | None:
    """The memories the request's filters allow; None when whole partitions are searched (a
    neighbour shares its turn's session, so its tenant and user too)."""
    if candidates and all(allowed is None for allowed in candidates.values()):
        return None
    return {int(pk) for pks in candidates.values() if pks is not None for pk in pks}


def _within(
    spread: dict[Hashable, float], scored: dict[Hashable, float], allowed: set[int] | None
) -> dict[Hashable, float]:
    """Drop neighbours the request's filters exclude (a neighbour was not filtered yet)."""
    if allowed is None:
        return spread
    return {pk: s for pk, s in spread.items() if pk in scored or pk in allowed}


def _best(hits: list[tuple[Hashable, float]], limit: int) -> list[tuple[Hashable, float]]:
    return sorted(hits, key=lambda h: (-h[1], str(h[0])))[:limit]


def search_memories(deps: ServiceDeps, tenant_id: str, request: SearchRequest) -> SearchResponse:
    """The ``top_k`` memories of the tenant most relevant to ``request.query``."""
    check_text(deps.settings, request.query, "query")
    check_filter(deps.settings, request.filters)
    if request.top_k > deps.settings.max_top_k:
        raise InvalidRequestError(
            f"top_k is {request.top_k}; the limit is {deps.settings.max_top_k}", field="top_k"
        )
    deps.sync_indexes()
    query_vector = deps.embedder.embed_query(request.query)
    query_tokens = tokenize(request.query)
    config = deps.settings.retrieval
    depth = max(request.top_k * _DEPTH_FACTOR, config.min_depth)
    dense: list[tuple[Hashable, float]] = []
    lexical: list[tuple[Hashable, float]] = []
    candidates = _candidates(deps, tenant_id, request)
    allowed = _allowed_pks(candidates)
    for key, in_partition in candidates.items():
        dense += deps.indexes.dense_search(key, query_vector, depth, in_partition)
        lexical += deps.indexes.lexical.search(key, query_tokens, depth, in_partition)
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
            spread_to_neighbours(scores, deps.indexes.turns, weights), scores, allowed
        ),
    )
    if request.threshold is not None:
        fused = [f for f in fused if f.score >= request.threshold]
    hits: list[_Hit] = []
    repeats: list[_Hit] = []
    covered: set[str] = set()
    position = 0
    builder = _ResultBuilder(deps, tenant_id, request, pieces, query_vector, allowed)
    # Load rows a window at a time: most searches need top_k plus a few (archived, deleted).
    while len(hits) < request.top_k and position < len(fused):
        window = fused[position : position + request.top_k - len(hits) + _SPARE_ROWS]
        position += len(window)
        for hit in builder.hits(window):
            # Near-duplicates (a fact restating a message already shown, an episode quoting
            # turns already shown, a turn shown in another's exchange) go after the results
            # that bring new events.
            if hit.own_sources and hit.sources <= covered:
                repeats.append(hit)
            else:
                hits.append(hit)
                covered |= hit.sources
    # Only the hits returned become results (snippets, public views): a deep search drops a
    # few dozen.
    results = [builder.result(hit) for hit in (hits + repeats)[: request.top_k]]
    return SearchResponse(data=results, count=len(results))


Side = Literal["before", "after"]


@dataclass
class _Hit:
    """A fused hit that passed the filters, with what it shows, before it becomes a result."""

    fused: Fused
    tier: Literal["long_term", "short_term"]
    context: list[tuple[Side, int]]  # its exchange's turns, in conversation order
    own_sources: set[str]  # the events its memory states (none: written without provenance)
    sources: set[str]  # the events it shows, its context's included


class _ResultBuilder:
    """Results for fused hits, window by window, reading each row once per search (a turn is
    often both a hit and another hit's context)."""

    def __init__(
        self,
        deps: ServiceDeps,
        tenant_id: str,
        request: SearchRequest,
        pieces: dict[str, Piece],
        query_vector: np.ndarray,
        allowed: set[int] | None,
    ) -> None:
        self.deps, self.tenant_id, self.request = deps, tenant_id, request
        self.pieces, self.query_vector, self.allowed = pieces, query_vector, allowed
        self.config = deps.settings.retrieval
        self.rows: dict[int, Row] = {}
        self.read: set[int] = set()  # pks asked for, found or not (deleted)
        self.ranked: dict[int, RankedSentences | None] = {}
        self.promoted: set[str] = set()

    def hits(self, fused: list[Fused]) -> list[_Hit]:
        """Hits of ``fused`` that can be shown, in order: archived, deleted and promoted
        pieces left out."""
        pks = [f.pk for f in fused if isinstance(f.pk, int)]
        exchanges = self._exchanges(pks) if self.config.exchange_context else {}
        self._read(pks + [p for turns in exchanges.values() for _, p in turns])
        hits = []
        for f in fused:
            if self._shown(f.pk):
                context = [(side, p) for side, p in exchanges.get(f.pk, ()) if self._shown(p)]
                own = set(self.rows[f.pk].source_event_ids or ())
                shown = own.union(*(self.rows[p].source_event_ids or () for _, p in context))
                hits.append(_Hit(f, "long_term", context, own, shown))
            elif (
                f.pk not in self.rows
                and f.pk in self.pieces
                and self.pieces[f.pk].event_id not in self.promoted
            ):
                event = {self.pieces[f.pk].event_id}
                hits.append(_Hit(f, "short_term", [], event, event))
            # else: archived, deleted since the index synced, or just promoted
        return hits

    def result(self, hit: _Hit) -> SearchResult:
        """The API view of a hit."""
        f = hit.fused
        if hit.tier == "short_term":
            memory, text_snippet = as_memory(self.pieces[f.pk]), None
        else:
            memory = to_public(self.rows[f.pk])
            text_snippet = self._snippet(f.pk, self.config.snippet_words)
        return SearchResult(
            memory=memory,
            snippet=text_snippet,
            score=f.score,
            dense_score=f.dense_score,
            lexical_score=f.lexical_score,
            graph_score=f.graph_score,
            tier=hit.tier,
            context=[self._context_turn(side, p) for side, p in hit.context],
        )

    def _context_turn(self, side: Side, pk: int) -> ContextTurn:
        row = self.rows[pk]
        return ContextTurn(
            side=side,
            id=row.id,
            text=row.text,
            snippet=self._snippet(pk, self.config.context_words),
            occurred_at=row.occurred_at,
            source_event_ids=list(row.source_event_ids or ()),
        )

    def _exchanges(self, pks: list[int]) -> dict[int, list[tuple[Side, int]]]:
        """Per message memory, the turns of its exchange the request's filters allow, in
        conversation order, each with its side."""
        found: dict[int, list[tuple[Side, int]]] = {}
        for pk in pks:
            before, after = self.deps.indexes.turns.exchange(pk)
            turns = [("before", p) for p in before] + [("after", p) for p in after]
            turns = [(side, p) for side, p in turns if self.allowed is None or p in self.allowed]
            if turns:
                found[pk] = turns
        return found

    def _read(self, pks: list[int]) -> None:
        new = [pk for pk in dict.fromkeys(pks) if pk not in self.read]
        if not new:
            return
        with self.deps.sessions() as session:
            rows = store.result_rows_by_pks(self.tenant_id, new, session=session)
        self.read.update(new)
        self.rows.update(rows)
        self.promoted.update(e for row in rows.values() for e in row.source_event_ids or ())

    def _shown(self, pk: Hashable) -> bool:
        # Decayed memories are out of default search.
        row = self.rows.get(pk)  # type: ignore[arg-type]
        return row is not None and (not row.archived_at or self.request.filters.include_archived)

    def _snippet(self, pk: int, words: int) -> str | None:
        """The row's query-focused snippet within ``words``; its sentences are ranked once
        per search whatever lengths are asked for."""
        row = self.rows[pk]
        if not words or quoted_whole(row.text, row.sentence_vectors, words):
            return None
        if pk not in self.ranked:
            self.ranked[pk] = rank_sentences(row.text, row.sentence_vectors, self.query_vector)
        ranked = self.ranked[pk]
        return ranked.cut(words) if ranked else None
