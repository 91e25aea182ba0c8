"""Stages 5 and 6, demote repeats and materialise: fused hits become results.

Rows are read a window at a time (most searches need ``top_k`` plus a few: archived or deleted
memories are left out), each row once per search (a turn is often both a hit and another hit's
context); only the hits returned become results (public views, snippets).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from memsvc.config.retrieval import RetrievalConfig
from memsvc.retrieval.fusion import Fused
from memsvc.retrieval.repeats import RepeatDemotion
from memsvc.retrieval.sentences import RankedSentences, quoted_whole, rank_sentences
from memsvc.retrieval.short_term import as_memory
from memsvc.schemas import ContextTurn, SearchRequest, SearchResult
from memsvc.service.deps import ServiceDeps
from memsvc.service.memories import to_public
from stores import memories as store
from stores.short_term import Piece

if TYPE_CHECKING:
    from sqlalchemy import Row

__all__ = ["ResultBuilder", "select_hits"]


Side = Literal["before", "after"]


@dataclass
class _Hit:
    """A fused hit that passed the filters, with what it shows, before it becomes a result."""

    fused: Fused
    tier: Literal["long_term", "short_term"]
    context: list[tuple[Side, int]]  # its exchange's turns, in conversation order
    own_sources: set[str]  # the events its memory states (none: written without provenance)
    sources: set[str]  # the events it shows, its context's included


class ResultBuilder:
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
        config: RetrievalConfig,
    ) -> None:
        self.deps, self.tenant_id, self.request = deps, tenant_id, request
        self.pieces, self.query_vector, self.allowed = pieces, query_vector, allowed
        self.config = config
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
            spread_score=f.spread_score,
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


def select_hits(builder: ResultBuilder, fused: list[Fused], top_k: int) -> list[_Hit]:
    """The ``top_k`` hits to return, in order, repeats demoted after the hits that bring new
    events; rows are read a window at a time until enough fresh hits are found."""
    demotion: RepeatDemotion[_Hit] = RepeatDemotion(enabled=builder.config.demote_repeats)
    position = 0
    while demotion.fresh < top_k and position < len(fused):
        window = fused[position : position + top_k - demotion.fresh + builder.config.spare_rows]
        position += len(window)
        for hit in builder.hits(window):
            demotion.offer(hit, own=hit.own_sources, shown=hit.sources)
    return demotion.ordered(top_k)
