"""``rank`` reports what spreading to neighbouring turns added to each score."""

from __future__ import annotations

from memsvc.config.retrieval import Retriever
from memsvc.retrieval.fusion import rank


def test_spread_score_is_what_spreading_added() -> None:
    lists = {Retriever.DENSE: [(2, 0.9), (4, 0.5)], Retriever.LEXICAL: [(2, 7.0)]}
    fused = {2: 1.0, 4: 0.3}
    spread = {1: 0.2, 2: 1.0, 3: 0.1, 4: 0.45}  # 1 and 3 only neighbours; 4 lent to as well
    ranked = {f.pk: f for f in rank(spread, lists, limit=10, fused=fused)}
    assert ranked[2].spread_score == 0.0 and ranked[2].dense_score == 0.9
    assert ranked[1].spread_score == 0.2 and ranked[1].dense_score is None
    assert abs(ranked[4].spread_score - 0.15) < 1e-9 and ranked[4].lexical_score is None
    assert ranked[3].score == ranked[3].spread_score == 0.1


def test_without_the_fused_scores_nothing_is_attributed_to_spreading() -> None:
    (only,) = rank({5: 0.4}, {Retriever.DENSE: [(5, 0.8)]}, limit=1)
    assert only.spread_score == 0.0 and only.score == 0.4
