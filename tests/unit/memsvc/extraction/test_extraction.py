"""Extraction without a model: sentences, subjects, dates, kinds, slots; and the LLM path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memsvc.extraction import OpenAICompatExtractor, RulesExtractor, SourceEvent, resolve_dates
from memsvc.extraction.slots import find_slot
from memsvc.settings import Settings

SAID = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def _event(text: str, speaker: str | None = "Caroline", role: str = "user", id_: str = "e1"):
    return SourceEvent(id=id_, speaker=speaker, role=role, text=text, time=SAID)


@pytest.mark.parametrize(
    ("text", "expected", "day"),
    [
        ("I went there yesterday", "I went there on 7 May 2023", datetime(2023, 5, 7, tzinfo=UTC)),
        ("two years ago we met", "in 2021 we met", datetime(2021, 1, 1, tzinfo=UTC)),
        ("see you next month", "see you in June 2023", datetime(2023, 6, 1, tzinfo=UTC)),
        ("last Friday I ran", "on 5 May 2023 I ran", datetime(2023, 5, 5, tzinfo=UTC)),
        ("3 days ago", "on 5 May 2023", datetime(2023, 5, 5, tzinfo=UTC)),
        (
            "I graduated on 3 March 2020",
            "I graduated on 3 March 2020",
            datetime(2020, 3, 3, tzinfo=UTC),
        ),
        ("nothing dated here", "nothing dated here", None),
    ],
)
def test_relative_dates_are_resolved_against_the_event_time(text, expected, day) -> None:
    rewritten, resolved = resolve_dates(text, SAID)
    assert rewritten == expected
    assert (resolved.day if resolved else None) == day


def test_rules_extractor_states_facts_about_named_subjects() -> None:
    extractor = RulesExtractor()
    found = extractor.extract_event(
        _event(
            "Hey Mel! I went to an LGBTQ support group yesterday and it was so powerful. "
            "What about you? My sister Anna lives in Boston. I'm thinking of studying "
            "counseling next year. I love painting."
        )
    )
    assert [(c.kind, c.text) for c in found] == [
        ("event", "Caroline went to an LGBTQ support group on 7 May 2023 and it was so powerful."),
        ("fact", "Caroline's sister Anna lives in Boston."),
        ("plan", "Caroline is thinking of studying counseling in 2024."),
        ("preference", "Caroline loves painting."),
    ]
    assert all(c.event_ids == ("e1",) and c.valid_from == SAID for c in found)
    assert found[0].occurred_at == datetime(2023, 5, 7, tzinfo=UTC)
    assert found[3].slot == "caroline|likes:painting" and found[3].value == "yes"


def test_rules_extractor_skips_questions_filler_and_assistant_turns() -> None:
    extractor = RulesExtractor()
    assert extractor.extract_event(_event("Thanks so much! That sounds great.")) == []
    assert extractor.extract_event(_event("Do you like jazz?")) == []
    assert extractor.extract_event(_event("I live in Oslo.", role="assistant")) == []
    (anonymous,) = extractor.extract_event(_event("I live in Oslo.", speaker=None))
    assert anonymous.text == "The user lives in Oslo." and anonymous.slot == "user|lives_in"
    (third,) = extractor.extract_event(_event("Jon moved to Oslo last year."))
    assert third.subject == "Jon" and third.slot == "jon|lives_in" and third.value == "oslo"


@pytest.mark.parametrize(
    ("sentence", "slot"),
    [
        ("Caroline lives in New York City now", ("lives_in", "new york city")),
        ("Caroline moved to Berlin on 7 May 2023", ("lives_in", "berlin")),
        ("Caroline works at Acme University", ("works_at", "acme university")),
        ("Caroline works as a nurse at the clinic", ("job", "nurse")),
        ("Caroline's favorite book is Dune.", ("favorite:book", "dune")),
        ("Caroline doesn't like coffee any more", ("likes:coffee", "no")),
        ("Caroline hates coffee", ("likes:coffee", "no")),
        ("Caroline is 32 years old", ("age", "32")),
        ("Caroline went to a concert", None),
    ],
)
def test_slots(sentence: str, slot) -> None:
    assert find_slot(sentence, "Caroline") == slot


# The LLM extractor's answers and failures: tests/unit/memsvc/extraction/test_llm_failures.py.


def test_build_extractor_picks_the_llm_when_configured() -> None:
    from memsvc.extraction import build_extractor

    assert isinstance(build_extractor(Settings()), RulesExtractor)
    llm = build_extractor(Settings(llm_base_url="http://127.0.0.1:9/v1"))
    assert isinstance(llm, OpenAICompatExtractor) and isinstance(llm.fallback, RulesExtractor)
