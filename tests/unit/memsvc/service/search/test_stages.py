"""The search pipeline's stages, each on its own (the whole pipeline: test_retrieval_context)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import networkx as nx
import numpy as np
import pytest

from memsvc.config.retrieval import RetrievalConfig, Retriever
from memsvc.retrieval.graph import GraphCache, UserGraph, graph_neighbours
from memsvc.retrieval.presets import PRESETS, preset
from memsvc.retrieval.repeats import RepeatDemotion
from memsvc.retrieval.turns import NeighbourWeights, TurnCatalog, spread_within
from memsvc.service.search.candidates import Candidates

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_candidates_allow_everything_only_for_whole_partitions() -> None:
    whole = Candidates({("t", "u"): None, ("t", "v"): None})
    assert whole.allowed is None and whole.one_partition() is None
    narrowed = Candidates({("t", "u"): np.array([3, 5]), ("t", "v"): None})
    assert narrowed.allowed == {3, 5}
    assert Candidates({}).allowed == set()  # nothing matched the filters: nothing allowed
    key, pks = Candidates({("t", "u"): np.array([7])}).one_partition()
    assert key == ("t", "u") and pks.tolist() == [7]


def test_spread_within_keeps_only_allowed_neighbours() -> None:
    catalog = TurnCatalog()
    for pk in (1, 2, 3):
        catalog.upsert(pk, ("t", "u", "s"), T0 + timedelta(minutes=pk), f"turn {pk}")
    weights = NeighbourWeights(after=0.1, after_question=0.5, before=0.2)
    assert spread_within({2: 1.0}, catalog, weights, None) == {1: 0.2, 2: 1.0, 3: 0.1}
    # Turn 3 is filtered out (another agent, say): it gets nothing; a scored turn stays.
    assert spread_within({2: 1.0}, catalog, weights, {1, 2}) == {1: 0.2, 2: 1.0}


def test_repeats_go_after_hits_that_bring_new_events() -> None:
    demotion: RepeatDemotion[str] = RepeatDemotion()
    demotion.offer("turn a", own={"e1"}, shown={"e1", "e2"})  # shows its exchange too
    demotion.offer("fact about e2", own={"e2"}, shown={"e2"})  # all shown above: a repeat
    demotion.offer("note", own=set(), shown=set())  # no provenance: never a repeat
    demotion.offer("turn b", own={"e3"}, shown={"e3"})
    assert demotion.fresh == 3
    assert demotion.ordered(10) == ["turn a", "note", "turn b", "fact about e2"]
    assert demotion.ordered(2) == ["turn a", "note"]
    off: RepeatDemotion[str] = RepeatDemotion(enabled=False)
    off.offer("turn a", own={"e1"}, shown={"e1"})
    off.offer("again", own={"e1"}, shown={"e1"})
    assert off.ordered(10) == ["turn a", "again"]


def _graph() -> UserGraph:
    graph = nx.Graph()
    names = {1: "Caroline", 2: "Berlin", 3: "Melanie", 4: "user"}
    graph.add_nodes_from((pk, {"name": name}) for pk, name in names.items())
    graph.add_edge(1, 2, weight=1.0)
    graph.add_edge(3, 4, weight=1.0)
    # Entity 4 is in every memory (a hub); the others in one or two.
    mentions = {1: [10, 11], 2: [11], 3: [12], 4: [10, 11, 12, 13, 14, 15]}
    return UserGraph.build(graph, mentions)


def test_graph_list_seeds_from_named_entities_and_skips_hubs() -> None:
    config = RetrievalConfig()
    found = graph_neighbours(_graph(), "where did Caroline move?", None, depth=100, config=config)
    assert found and found[0][0] == 11  # mentions Caroline and Berlin, her neighbour
    assert {pk for pk, _ in found} >= {10, 11}
    # Only a hub named: no list. Filters narrow the memories.
    assert graph_neighbours(_graph(), "the user", None, depth=100, config=config) == []
    narrowed = graph_neighbours(_graph(), "Caroline", np.array([10]), depth=100, config=config)
    assert [pk for pk, _ in narrowed] == [10]
    short = config.model_copy(update={"graph_list_length": 1})
    assert len(graph_neighbours(_graph(), "Caroline", None, depth=100, config=short)) == 1


def test_graph_cache_reloads_when_the_watermark_moves() -> None:
    cache, loads = GraphCache(), []

    def load():
        loads.append(1)
        return nx.Graph(), {}

    first = cache.get(("t", "u"), watermark=(1, 1), load=load)
    assert cache.get(("t", "u"), watermark=(1, 1), load=load) is first and len(loads) == 1
    cache.get(("t", "u"), watermark=(2, 5), load=load)
    cache.get(("t", "u"), watermark=(2, 5), load=load, cache=False)  # as_of: never kept
    assert len(loads) == 3


def test_weights_name_the_enabled_retrievers_in_fusion_order() -> None:
    order = [Retriever.DENSE, Retriever.LEXICAL, Retriever.GRAPH]
    assert list(RetrievalConfig().weights()) == order
    assert list(preset("dense").weights()) == [Retriever.DENSE]
    assert RetrievalConfig(min_depth=100).depth(10) == 100
    assert RetrievalConfig(min_depth=10, depth_factor=4).depth(10) == 40


def test_presets_are_valid_configs_and_unknown_names_are_refused() -> None:
    for name in PRESETS:
        assert isinstance(preset(name), RetrievalConfig)
    assert preset("rrf").fusion == "rrf" and preset("default") == RetrievalConfig()
    with pytest.raises(ValueError, match="unknown retrieval preset 'nope'"):
        preset("nope")
