"""Fusing ranked lists from several retrievers into one ranking with scores in [0, 1].

Two stages of the search pipeline live here: :func:`fuse` (lists -> one score per item) and
:func:`rank` (scores -> the best items, each with what every retriever said of it). Spreading
to neighbouring turns runs between them (:func:`memsvc.retrieval.turns.spread_to_neighbours`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from memsvc.config.retrieval import Retriever

__all__ = ["Fused", "FusionMethod", "Ranked", "fuse", "rank"]

#: One retriever's list: ``(item, raw score)``, best first.
Ranked = list[tuple[Hashable, float]]


class FusionMethod(StrEnum):
    RRF = "rrf"  # reciprocal rank fusion (Cormack et al. 2009): robust, ignores raw scores
    WEIGHTED = "weighted"  # convex combination of min-max normalised scores


@dataclass
class Fused:
    pk: Hashable  # a memory pk (long-term) or a piece id (short-term)
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    graph_score: float | None = None
    # The part of ``score`` lent by neighbouring turns (the spread stage); 0.0 when none.
    spread_score: float = 0.0


def _rrf(lists: list[Ranked], weights: list[float], k: float) -> dict[Hashable, float]:
    scores: dict[Hashable, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for position, (pk, _) in enumerate(ranked):
            scores[pk] = scores.get(pk, 0.0) + weight / (k + position + 1)
    best = sum(w / (k + 1) for w in weights)  # ranked first everywhere
    return {pk: s / best for pk, s in scores.items()}


def _weighted(lists: list[Ranked], weights: list[float]) -> dict[Hashable, float]:
    scores: dict[Hashable, float] = {}
    total = sum(weights)
    for ranked, weight in zip(lists, weights, strict=True):
        if not ranked:
            continue
        values = [s for _, s in ranked]
        low, high = min(values), max(values)
        span = high - low
        for pk, s in ranked:
            norm = (s - low) / span if span > 0 else 1.0
            scores[pk] = scores.get(pk, 0.0) + weight * norm / total
    return scores


def fuse(
    lists: Mapping[Retriever, Ranked],
    weights: Mapping[Retriever, float],
    *,
    method: FusionMethod = FusionMethod.RRF,
    rrf_k: float = 60.0,
) -> dict[Hashable, float]:
    """One score per item found by any list, 1.0 meaning first (or best) in every list used.

    Every list given counts, an empty one included: a retriever that should abstain (the
    graph, when the query names no entity) is left out of ``lists`` by its caller, so that
    scores keep their meaning.
    """
    names = list(lists)
    ranked = [lists[name] for name in names]
    list_weights = [weights[name] for name in names]
    if method == FusionMethod.RRF:
        return _rrf(ranked, list_weights, rrf_k)
    return _weighted(ranked, list_weights)


def rank(
    scores: Mapping[Hashable, float],
    lists: Mapping[Retriever, Ranked],
    *,
    limit: int,
    fused: Mapping[Hashable, float] | None = None,
) -> list[Fused]:
    """The ``limit`` best items, best first (ties by id), each with its raw score per list.

    ``fused``: the scores as fusion gave them, before spreading to neighbouring turns; each
    item's ``spread_score`` is then what spreading added (what the inspector shows)."""
    raw = {name: dict(found) for name, found in lists.items()}
    dense = raw.get(Retriever.DENSE, {})
    lexical = raw.get(Retriever.LEXICAL, {})
    graph = raw.get(Retriever.GRAPH, {})
    best = sorted(scores.items(), key=lambda item: (-item[1], str(item[0])))[:limit]
    ranked = []
    for pk, score in best:
        score = min(1.0, score)
        lent = 0.0 if fused is None else max(0.0, score - min(1.0, fused.get(pk, 0.0)))
        ranked.append(Fused(pk, score, dense.get(pk), lexical.get(pk), graph.get(pk), lent))
    return ranked
