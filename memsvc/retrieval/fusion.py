"""Fusing ranked lists from several retrievers into one ranking with scores in [0, 1]."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Fused", "FusionMethod", "fuse"]

RRF_K = 60.0


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


def _rrf(lists: list[list[tuple[Hashable, float]]], weights: list[float]) -> dict[Hashable, float]:
    scores: dict[Hashable, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        for rank, (pk, _) in enumerate(ranked):
            scores[pk] = scores.get(pk, 0.0) + weight / (RRF_K + rank + 1)
    best = sum(w / (RRF_K + 1) for w in weights)  # ranked first everywhere
    return {pk: s / best for pk, s in scores.items()}


def _weighted(
    lists: list[list[tuple[Hashable, float]]], weights: list[float]
) -> dict[Hashable, float]:
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
    dense: list[tuple[Hashable, float]],
    lexical: list[tuple[Hashable, float]],
    *,
    method: FusionMethod = FusionMethod.RRF,
    weights: tuple[float, float] = (1.0, 1.0),
    limit: int,
    graph: list[tuple[Hashable, float]] | None = None,
    graph_weight: float = 0.5,
    spread: Callable[[dict[Hashable, float]], dict[Hashable, float]] | None = None,
) -> list[Fused]:
    """Merge dense and lexical rankings (each best first) into the ``limit`` best, best first.

    ``graph`` (memories near the query's entities) joins as a third list when not empty; an
    empty one is left out so scores keep their meaning (1 = first in every list used).
    ``spread`` may then move score between items (e.g. to neighbouring turns) before ranking.
    """
    lists = [dense, lexical]
    list_weights = list(weights)
    if graph:
        lists.append(graph)
        list_weights.append(graph_weight)
    combine = _rrf if method == FusionMethod.RRF else _weighted
    scores = combine(lists, list_weights)
    if spread is not None:
        scores = spread(scores)
    graph_by_pk = dict(graph or [])
    dense_by_pk = dict(dense)
    lexical_by_pk = dict(lexical)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], str(item[0])))[:limit]
    return [
        Fused(pk, min(1.0, score), dense_by_pk.get(pk), lexical_by_pk.get(pk), graph_by_pk.get(pk))
        for pk, score in ranked
    ]
