"""Entities that are things (issue 23 item 1), with the issue's own examples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memsvc.extraction import RulesExtractor
from memsvc.extraction.base import Candidate, SourceEvent
from memsvc.extraction.names import canonical_role, is_common_word, is_name
from memsvc.graph import read_graph
from memsvc.graph.aliases import short_name_targets

T = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def _graph_of(chat: list[tuple[str, str]]) -> dict[str, str]:
    """Entity name -> type over everything the rules extractor reads off ``chat``."""
    events = [SourceEvent(str(k), who, "user", text, T) for k, (who, text) in enumerate(chat)]
    found: dict[str, str] = {}
    for candidate in RulesExtractor().extract(events):
        for mention in read_graph(candidate).entities.values():
            found[mention.name] = mention.type
    return found


@pytest.mark.parametrize("word", ["No", "Here", "Those", "Painting", "Pottery", "Hiking", "Hey"])
def test_sentence_initial_common_words_are_not_names(word: str) -> None:
    assert not is_name(word, initial=True)


@pytest.mark.parametrize("word", ["Caroline", "Melanie", "Deborah", "Jolene", "Gina", "Grace"])
def test_names_stay_names(word: str) -> None:
    assert is_name(word, initial=True)


def test_function_words_are_never_names_and_speakers_always_are() -> None:
    assert not is_name("Those", initial=False)
    assert not is_name("Melanie-time", initial=False)
    assert is_common_word("luna") and is_name("Luna", initial=True, known=frozenset({"Luna"}))


def test_the_issues_junk_makes_no_entity() -> None:
    entities = _graph_of(
        [
            ("Caroline", "No worries, Mel! Here is the thing."),
            ("Caroline", "Those were the days."),
            ("Melanie", "Painting is my thing, it relaxes me after work."),
            ("Melanie", "Pottery makes me so happy these days."),
            ("Caroline", "I'm looking forward to Melanie-time at the lake with you."),
            ("Caroline", "My goal is to help people. My voice matters. I tried my best."),
        ]
    )
    for junk in ("No", "Here", "Those", "Painting", "Pottery", "Melanie-time", "Caroline's",
                 "Caroline's voice", "Caroline's best", "Caroline's goal"):  # fmt: skip
        assert junk not in entities, junk
    assert entities["Caroline"] == "person"


def test_a_relative_is_a_person_related_to_the_subject() -> None:
    (mom,) = [
        c
        for c in RulesExtractor().extract(
            [SourceEvent("1", "Deborah", "user", "My mom taught me to garden.", T)]
        )
    ]
    graph = read_graph(mom)
    mother = graph.entities["deborah's mother"]
    assert (mother.name, mother.type) == ("Deborah's mother", "person")
    assert [(r.source, r.type, r.target) for r in graph.relations] == [
        ("deborah", "family:mother", "deborah's mother")
    ]
    assert graph.aliases == {"deborah's mother": {"Deborah's mom"}}  # "mom" = "mother"
    assert canonical_role("Mum") == "mother"


def test_concrete_possessions_are_things_and_other_names_keep_their_type() -> None:
    fact = Candidate(
        text="Melanie loves Caroline's painting and Melanie's new guitar.",
        kind="preference",
        event_ids=("1",),
        subject="Melanie",
        occurred_at=T,
        valid_from=T,
    )
    entities = {m.name: m.type for m in read_graph(fact).entities.values()}
    assert entities == {"Melanie": "person", "Melanie's guitar": "thing", "Caroline": "person"}


def test_llm_entities_follow_the_same_rules() -> None:
    fact = Candidate(
        text="Caroline's goal is counseling.",
        kind="fact",
        event_ids=("1",),
        subject="Caroline",
        occurred_at=T,
        valid_from=T,
        entities=[("Caroline's goal", "thing"), ("Those", "person"), ("Deborah's mom", "person")],
    )
    names = {m.name for m in read_graph(fact).entities.values()}
    assert names == {"Caroline", "Deborah's mother"}


def test_short_names_merge_into_exactly_one_known_person() -> None:
    known = {"melanie": "Melanie", "caroline": "Caroline"}
    assert short_name_targets({"mel": "Mel"}, known) == {"mel": "melanie"}
    assert short_name_targets({"car": "Car", "me": "Me"}, known) == {"car": "caroline"}
    two = {"samantha": "Samantha", "samuel": "Samuel"}
    assert short_name_targets({"sam": "Sam"}, two) == {}  # ambiguous: keep apart
    assert short_name_targets({"melanie": "Melanie"}, known) == {}
    relative = {"deborah's mother": "Deborah's mother"}
    assert short_name_targets({"deborah": "Deborah"}, relative) == {}


def test_likes_name_things_and_full_names_are_people() -> None:
    entities = _graph_of(
        [
            ("Melanie", "I love that art lets us express ourselves."),
            ("Melanie", "I love my mom so much."),
            ("Melanie", "I love live music."),
            ("Caroline", "I went to an Ed Sheeran concert on Fri with my friends."),
            ("Caroline", "I read Becoming Nicole by Amy Ellis Nutt last week."),
        ]
    )
    assert "art lets us" not in entities and "mom" not in entities
    assert entities["live music"] == "activity"
    assert entities["Ed Sheeran"] == "person" and entities["Amy Ellis Nutt"] == "person"
    assert entities["Becoming Nicole"] == "thing"
    assert "Fri" not in entities
