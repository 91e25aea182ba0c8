"""BM25, fusion and text normalisation."""

from __future__ import annotations

from collections import Counter

import networkx as nx
import numpy as np
import pytest

from memsvc.retrieval.bm25 import BM25Index, bm25_scores
from memsvc.retrieval.fusion import FusionMethod, fuse
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
        for node, rank in theirs.items():
            assert ours[node] == pytest.approx(rank, abs=1e-12)
    assert user.names["e3"] == 3 and user.linked == 12
    assert UserGraph.build(nx.Graph(), {}).pagerank(set()) == {}


def test_rrf_scores_are_normalised_and_reward_agreement() -> None:
    dense = [(1, 0.9), (2, 0.8), (3, 0.1)]
    lexical = [(2, 5.0), (4, 3.0)]
    fused = fuse(dense, lexical, method=FusionMethod.RRF, limit=10)
    assert fused[0].pk == 2  # found by both
    assert fused[0].dense_score == 0.8 and fused[0].lexical_score == 5.0
    assert all(0 < f.score <= 1 for f in fused)
    assert fuse([(9, 0.5)], [(9, 1.0)], limit=1)[0].score == 1.0


def test_weighted_fusion_uses_scores() -> None:
    fused = fuse([(1, 0.9), (2, 0.1)], [(2, 1.0), (1, 0.99)], method=FusionMethod.WEIGHTED, limit=2)
    assert [f.pk for f in fused] == [1, 2]
