"""Typed relations read off facts (issue 23 item 2)."""

from __future__ import annotations

from datetime import UTC, datetime

from memsvc.extraction import RulesExtractor
from memsvc.extraction.base import SourceEvent
from memsvc.extraction.slots import find_slot
from memsvc.graph import read_graph

T = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def _relations(speaker: str, text: str) -> set[tuple[str, str, str]]:
    found = set()
    for candidate in RulesExtractor().extract([SourceEvent("1", speaker, "user", text, T)]):
        graph = read_graph(candidate)
        for r in graph.relations:
            target = graph.entities[r.target]
            found.add((graph.entities[r.source].name, r.type, f"{target.name} ({target.type})"))
    return found


def test_attended_does_activity_plans_to() -> None:
    assert _relations("Caroline", "I went to an LGBTQ support group yesterday.") == {
        ("Caroline", "attended", "LGBTQ support group (organisation)")
    }
    assert _relations("Melanie", "I took up pottery last month.") == {
        ("Melanie", "does_activity", "pottery (activity)")
    }
    assert _relations("Caroline", "I'm thinking of studying counseling next year.") == {
        ("Caroline", "plans_to", "studying counseling (activity)")
    }
    assert _relations("Jon", "I will visit Paris next month.") == {
        ("Jon", "plans_to", "Paris (place)")
    }


def test_slot_and_family_relations() -> None:
    assert _relations("Jon", "I started working at Google.") == {
        ("Jon", "works_at", "Google (organisation)")
    }
    assert _relations("Ann", "I live in Lisbon now.") == {("Ann", "lives_in", "Lisbon (place)")}
    assert _relations("Ann", "I love hiking.") == {("Ann", "likes", "hiking (activity)")}
    assert _relations("Deborah", "My mum loved roses.") >= {
        ("Deborah", "family:mother", "Deborah's mother (person)")
    }


def test_how_much_is_not_what() -> None:
    said = "Ann doesn't like hiking anymore."
    assert find_slot(said, "Ann") == ("likes:hiking", "no")


def test_no_relation_to_chatter() -> None:
    for speaker, text in [
        ("Caroline", "I'll keep ya posted on how it goes next week."),
        ("Caroline", "I'm going to keep using my voice to help others."),
        ("Melanie", "I want to start thinking about it soon."),
        ("Melanie", "I started recently and it was great."),
    ]:
        assert not {r for r in _relations(speaker, text) if r[1] != "likes"}, text
