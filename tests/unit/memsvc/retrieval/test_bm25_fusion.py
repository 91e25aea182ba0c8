"""BM25, fusion and text normalisation."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import numpy as np
import pytest

from memsvc.config.retrieval import Retriever
from memsvc.retrieval.bm25 import BM25Index, bm25_scores
from memsvc.retrieval.fusion import FusionMethod, fuse, rank
from memsvc.retrieval.graph import UserGraph
from memsvc.retrieval.text import content_hash, tokenize

KEY = ("t", "u")


def test_tokenize_stems_and_drops_stop_words() -> None:
    assert tokenize("The dogs were running to the parks!") == ["dog", "run", "park"]


def test_content_hash_ignores_case_and_spacing() -> None:
    assert content_hash("I like  tea ") == content_hash("i like tea")
    assert content_hash("I like tea") != content_hash("I like coffee")


def test_bm25_ranks_rare_term_matches_first() -> None:
    index = BM25Index()
    docs = {1: "my dog likes the park", 2: "the park is big", 3: "a zebra in the park"}
    for pk, text in docs.items():
        index.upsert(KEY, pk, tokenize(text))
    hits = index.search(KEY, tokenize("zebra park"), k=3)
    assert hits[0][0] == 3
    assert {pk for pk, _ in hits} == {1, 2, 3}
    assert index.search(KEY, tokenize("unicorn"), k=3) == []


def test_bm25_remove_and_update_are_reflected() -> None:
    index = BM25Index()
    index.upsert(KEY, 1, tokenize("apples and pears"))
    index.upsert(KEY, 2, tokenize("apples only"))
    index.remove([1])
    assert [pk for pk, _ in index.search(KEY, tokenize("pears apples"), k=5)] == [2]
    index.upsert(KEY, 2, tokenize("bananas"))
    assert index.search(KEY, tokenize("apples"), k=5) == []
    assert [pk for pk, _ in index.search(KEY, tokenize("bananas"), k=5)] == [2]


def test_bm25_allowed_filter_and_compaction_keep_results_right() -> None:
    index = BM25Index()
    for pk in range(3000):
        index.upsert(KEY, pk, tokenize(f"common word{pk % 7}"))
    index.remove(list(range(0, 2500)))  # enough frees to trigger a compaction
    hits = index.search(KEY, tokenize("common word3"), k=1000)
    assert {pk for pk, _ in hits} == {pk for pk in range(2500, 3000)}
    assert hits[0][0] % 7 == 3
    allowed = np.array([2600, 2601, 10], dtype=np.int64)
    assert {pk for pk, _ in index.search(KEY, tokenize("common"), k=10, allowed=allowed)} == {
        2600,
        2601,
    }


def test_bm25_scores_without_an_index_equal_the_index() -> None:
    rng = np.random.default_rng(3)
    vocab = [f"w{n}" for n in range(40)]
    docs = [list(rng.choice(vocab, size=int(rng.integers(1, 12)))) for _ in range(60)]
    index = BM25Index()
    for pk, tokens in enumerate(docs):
        index.upsert(KEY, pk, tokens)
    index.remove([7, 8])  # freed slots must not change the live documents' scores
    live = [pk for pk in range(len(docs)) if pk not in (7, 8)]
    query = ["w1", "w5", "w5", "w33", "absent"]
    direct = bm25_scores([(Counter(docs[pk]), len(docs[pk])) for pk in live], query)
    expected = dict(index.search(KEY, query, k=len(docs)))
    got = {pk: float(score) for pk, score in zip(live, direct, strict=True) if score > 0}
    assert got.keys() == expected.keys() and len(got) > 5
    for pk, score in got.items():
        assert score == pytest.approx(expected[pk], rel=1e-5)
    assert bm25_scores([], query).shape == (0,)


def test_cached_pagerank_walk_equals_networkx() -> None:
    graph = nx.Graph()
    graph.add_nodes_from([(n, {"name": f"e{n}"}) for n in range(12)])  # 10, 11: no edges
    edges = [(0, 1, 2.0), (1, 2, 1.0), (2, 3, 1.0), (3, 0, 3.0), (4, 5, 1.0), (5, 6, 1.0)]
    graph.add_weighted_edges_from(edges)
    graph.add_edge(6, 7, weight=1.0)
    graph.add_edge(8, 9, weight=0.5)
    user = UserGraph.build(graph, {n: [100 + n] for n in range(12)})
    for seeds in ({0}, {4, 9}, {10}, {3, 11}):
        ours = user.pagerank(seeds)
        personal = dict.fromkeys(seeds, 1.0)
        theirs = nx.pagerank(graph, personalization=personal, max_iter=50, tol=1e-4)
        assert ours.keys() == theirs.keys()
        for node, pr in theirs.items():
            assert ours[node] == pytest.approx(pr, abs=1e-12)
    assert user.names["e3"] == 3 and user.linked == 12
    assert UserGraph.build(nx.Graph(), {}).pagerank(set()) == {}


DENSE, LEXICAL, GRAPH = Retriever.DENSE, Retriever.LEXICAL, Retriever.GRAPH
EQUAL = {DENSE: 1.0, LEXICAL: 1.0, GRAPH: 0.5}


def _fused(lists, method, weights=EQUAL, limit=10):
    return rank(fuse(lists, weights, method=method), lists, limit=limit)


def test_rrf_scores_are_normalised_and_reward_agreement() -> None:
    lists = {DENSE: [(1, 0.9), (2, 0.8), (3, 0.1)], LEXICAL: [(2, 5.0), (4, 3.0)]}
    fused = _fused(lists, FusionMethod.RRF)
    assert fused[0].pk == 2  # found by both
    assert fused[0].dense_score == 0.8 and fused[0].lexical_score == 5.0
    assert all(0 < f.score <= 1 for f in fused)
    assert _fused({DENSE: [(9, 0.5)], LEXICAL: [(9, 1.0)]}, FusionMethod.RRF)[0].score == 1.0


# Scores that separate the two methods: dense is sure of item 1 (a wide margin) and lexical
# barely prefers item 2 (a hair's margin). Ranks alone tie them; scores do not.
SEPARATING = {DENSE: [(1, 0.95), (2, 0.10), (3, 0.05)], LEXICAL: [(2, 7.01), (1, 7.00), (3, 0.0)]}


def test_weighted_fusion_follows_the_scores_where_rrf_sees_only_ranks() -> None:
    weighted = _fused(SEPARATING, FusionMethod.WEIGHTED)
    assert [f.pk for f in weighted] == [1, 2, 3]
    # 1: dense 1.0 + lexical (7.00 - 0) / 7.01; 2: dense (0.10 - 0.05) / 0.90 + lexical 1.0.
    assert weighted[0].score == pytest.approx((1.0 + 7.00 / 7.01) / 2)
    assert weighted[1].score == pytest.approx((0.05 / 0.90 + 1.0) / 2)
    rrf = _fused(SEPARATING, FusionMethod.RRF)
    # Ranks: 1 is (1st, 2nd) and 2 is (2nd, 1st): a tie, broken by id; 3 is last in both.
    assert rrf[0].score == rrf[1].score and [f.pk for f in rrf] == [1, 2, 3]
    # Swap the margins: weighted now follows lexical's certainty, RRF cannot tell.
    swapped = {DENSE: [(1, 0.11), (2, 0.10), (3, 0.0)], LEXICAL: [(2, 9.0), (1, 0.5), (3, 0.0)]}
    assert [f.pk for f in _fused(swapped, FusionMethod.WEIGHTED)][:2] == [2, 1]
    assert [f.pk for f in _fused(swapped, FusionMethod.RRF)][:2] == [1, 2]


def test_fusion_weights_and_abstaining_lists() -> None:
    lists = {DENSE: [(1, 0.9), (2, 0.1)], LEXICAL: [(2, 1.0), (1, 0.0)]}
    # Dense weighted 3x lexical: its favourite wins by 3/4 to 1/4.
    scores = fuse(lists, {DENSE: 3.0, LEXICAL: 1.0}, method=FusionMethod.WEIGHTED)
    assert scores == {1: pytest.approx(0.75), 2: pytest.approx(0.25)}
    # A graph list that joins pulls its item up; when it is left out (abstains) the others'
    # scores keep their meaning: 1.0 is still "first in every list used".
    with_graph = {**lists, GRAPH: [(2, 0.3)]}
    assert (
        fuse(with_graph, EQUAL, method=FusionMethod.RRF)[2]
        > fuse(lists, EQUAL, method=FusionMethod.RRF)[2]
    )
    assert fuse({DENSE: [(5, 1.0)], LEXICAL: [(5, 2.0)]}, EQUAL, method=FusionMethod.RRF) == {
        5: pytest.approx(1.0)
    }
    # An empty list that is given still counts (its weight is in the denominator).
    assert fuse({DENSE: [(5, 1.0)], LEXICAL: []}, EQUAL, method=FusionMethod.RRF) == {
        5: pytest.approx(0.5)
    }


def test_rank_keeps_the_best_and_each_lists_raw_score() -> None:
    lists = {DENSE: [(1, 0.9)], LEXICAL: [(2, 4.0), (1, 3.0)], GRAPH: [(3, 0.2)]}
    fused = rank({1: 0.8, 2: 0.8, 3: 1.7}, lists, limit=2)
    assert [(f.pk, f.score) for f in fused] == [(3, 1.0), (1, 0.8)]  # capped at 1; ties by id
    assert (fused[1].dense_score, fused[1].lexical_score, fused[1].graph_score) == (0.9, 3.0, None)
    assert fused[0].graph_score == 0.2
