"""Merge rules, the forgetting curve, episode summaries and graph reading, as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from memsvc.extraction import Candidate
from memsvc.graph import read_graph
from memsvc.lifecycle.decay import should_archive, strength
from memsvc.lifecycle.episodes import Line, summarise
from memsvc.lifecycle.merge import Known, decide
from memsvc.retrieval.text import content_hash

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _known(pk: int, text: str, vector, *, slot=None, value=None, subject="Ann") -> Known:
    return Known(pk, text, "fact", content_hash(text), vector, slot, value, subject, NOW, None)


def test_merge_decisions() -> None:
    oslo = _known(1, "Ann lives in Oslo.", _unit(1, 0, 0), slot="ann|lives_in", value="oslo")
    jazz = _known(2, "Ann loves jazz.", _unit(0, 1, 0))
    known = [oslo, jazz]

    def run(text, vector, slot=None, value=None, subject="Ann"):
        return decide(
            text=text, subject=subject, slot=slot, value=value, vector=vector, known=known,
            threshold=0.9,
        )  # fmt: skip

    same = run("ann lives in  oslo.", _unit(0, 0, 1))
    assert (same.op, same.target) == ("NOOP", oslo)  # same normalised text
    agreeing = run("Ann moved to Oslo.", _unit(0, 0, 1), "ann|lives_in", "oslo")
    assert (agreeing.op, agreeing.target) == ("NOOP", oslo)
    moved = run("Ann moved to Berlin.", _unit(1, 0, 0), "ann|lives_in", "berlin")
    assert moved.op == "ADD" and moved.contradicts == [oslo]
    richer = run("Ann loves jazz and blues.", _unit(0.05, 1, 0))
    assert (richer.op, richer.target) == ("UPDATE", jazz)  # says strictly more
    poorer = run("Ann loves music.", _unit(0.05, 1, 0))
    assert (poorer.op, poorer.target) == ("NOOP", jazz)
    other_subject = run("Bob loves jazz.", _unit(0, 1, 0), subject="Bob")
    assert other_subject.op == "ADD"
    unrelated = run("Ann has a cat.", _unit(0, 0, 1))
    assert unrelated.op == "ADD" and not unrelated.contradicts


def test_forgetting_curve_is_reinforced_by_use_and_importance() -> None:
    def s(days: float, importance: float = 0.0, uses: int = 0) -> float:
        return strength(
            last_reinforced=NOW - timedelta(days=days),
            now=NOW,
            importance=importance,
            access_count=uses,
            half_life_days=30,
        )

    assert s(0) == 1.0 and abs(s(30) - 0.5) < 1e-9
    assert s(60, importance=1.0) == s(30) and s(60, uses=1) == s(30)
    assert s(400) < 0.05 and should_archive(s(400), importance=0.5, below=0.05, pinned=0.9)
    assert not should_archive(s(400), importance=0.95, below=0.05, pinned=0.9)


def test_episode_summary_picks_the_telling_sentences_in_order() -> None:
    t = NOW
    lines = [
        Line("e1", "Ann", "Ann adopted a greyhound named Bolt.", t),
        Line("e2", "Bob", "Bob: nice.", t),
        Line("e3", "Ann", "Bolt the greyhound sleeps all day.", t + timedelta(minutes=1)),
        Line("e4", "Bob", "Bob runs marathons in Berlin.", t + timedelta(minutes=2)),
    ]
    text, quoted = summarise(lines, max_sentences=2)
    assert text.startswith("Ann and Bob, 1 January 2024: ")
    assert [q.event_id for q in quoted] == sorted(q.event_id for q in quoted)
    assert {q.event_id for q in quoted} <= {"e1", "e3", "e4"} and len(quoted) == 2
    assert all(q.text in text for q in quoted)


def test_graph_reads_entities_and_relations_off_a_fact() -> None:
    fact = Candidate(
        text="Caroline's sister Anna moved to Boston in 2022.",
        kind="event",
        event_ids=("e",),
        subject="Caroline",
        occurred_at=NOW,
        valid_from=NOW,
    )
    graph = read_graph(fact)
    kinds = {e.name: e.type for e in graph.entities.values()}
    assert kinds == {"Caroline": "person", "Anna": "person", "Boston": "place"}
    assert ("caroline", "family:sister", "anna") in {
        (r.source, r.type, r.target) for r in graph.relations
    }
    lives = Candidate(
        text="Caroline lives in Oslo.",
        kind="fact",
        event_ids=("e",),
        subject="Caroline",
        occurred_at=NOW,
        valid_from=NOW,
        slot="caroline|lives_in",
        value="oslo",
    )
    assert [(r.type, r.target) for r in read_graph(lives).relations] == [("lives_in", "oslo")]


def test_graph_never_fails_on_a_subject_without_a_name() -> None:
    # Regression (LoCoMo): a sentence opening with "The ..." once made the subject "The",
    # whose key is empty, and failed the whole session's job.
    from memsvc.extraction import RulesExtractor, SourceEvent

    said = SourceEvent("e", "Ann", "user", "The Beatles were amazing live. The kids love it.", NOW)
    assert RulesExtractor().extract_event(said) == []
    odd = Candidate(
        text="The went.", kind="fact", event_ids=("e",), subject="The", occurred_at=NOW,
        valid_from=NOW,
    )  # fmt: skip
    assert list(read_graph(odd).entities) == ["user"]
