"""How the LLM extractor fails: a 4xx at once and loudly, 5xx/timeouts after retries, and
only malformed answers fall back to the rules; the project's guide reaches the prompt."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from memsvc.extraction import (
    Category,
    ExtractionRejected,
    ExtractionUnavailable,
    Guide,
    OpenAICompatExtractor,
    RulesExtractor,
    SourceEvent,
)
from memsvc.extraction.llm import build_messages

T = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
EVENT = SourceEvent(id="e1", speaker="Caroline", role="user", text="I live in Oslo.", time=T)
GUIDE = Guide(
    instructions="Only keep facts about where people live.",
    categories=(Category("places", ("oslo", "city"), "where someone lives"), Category("pets")),
)


def _answer(facts: list[dict]) -> httpx.Response:
    content = json.dumps({"facts": facts})
    return httpx.Response(200, json={"choices": [{"message": {"content": content}}]})


FACT = {
    "text": "Caroline lives in Oslo.",
    "kind": "fact",
    "subject": "Caroline",
    "event_ids": ["e1"],
    "occurred_on": None,
    "attribute": "lives_in",
    "value": "Oslo",
    "entities": [{"name": "Oslo", "type": "place"}],
    "categories": ["places", "invented"],
}


def _extractor(answers: list[httpx.Response], seen: list[dict]) -> OpenAICompatExtractor:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return OpenAICompatExtractor(
        "http://llm.test/v1",
        model="m",
        fallback=RulesExtractor(),
        transport=httpx.MockTransport(handler),
    )


def test_a_good_answer_becomes_candidates_with_known_categories_only() -> None:
    seen: list[dict] = []
    (fact,) = _extractor([_answer([FACT])], seen).extract([EVENT], GUIDE)
    assert (fact.text, fact.slot, fact.value, fact.extractor) == (
        "Caroline lives in Oslo.",
        "caroline|lives_in",
        "oslo",
        "llm",
    )
    assert fact.entities == [("Oslo", "place")] and fact.categories == ["places"]
    request = seen[0]
    assert request["response_format"]["json_schema"]["strict"] is True
    system = request["messages"][0]["content"]
    assert "Only keep facts about where people live." in system
    assert "- places: where someone lives; keywords: oslo, city" in system
    assert system.endswith("- pets")


def test_a_4xx_fails_at_once_with_the_endpoints_message() -> None:
    seen: list[dict] = []
    refused = httpx.Response(
        400,
        json={"error": {"message": "Invalid schema for response_format 'memories'", "type": "x"}},
    )
    with pytest.raises(ExtractionRejected) as raised:
        _extractor([refused], seen).extract([EVENT])
    assert len(seen) == 1 and raised.value.status == 400
    assert "(400): Invalid schema for response_format 'memories'" in raised.value.message


def test_5xx_and_timeouts_are_retried_then_fail() -> None:
    seen: list[dict] = []
    answers = [httpx.Response(503, text="overloaded"), httpx.ReadTimeout("slow"),
               httpx.Response(500, json={"error": {"message": "boom"}})]  # fmt: skip
    with pytest.raises(ExtractionUnavailable) as raised:
        _extractor(answers, seen).extract([EVENT])
    assert len(seen) == 3 and "last: 500: boom" in raised.value.message

    seen.clear()
    recovered = _extractor([httpx.Response(502), _answer([FACT])], seen).extract([EVENT])
    assert len(seen) == 2 and recovered[0].extractor == "llm"


def test_only_malformed_answers_fall_back_to_rules() -> None:
    seen: list[dict] = []
    bad = [_answer([{**FACT, "event_ids": ["e-unknown"]}]), _answer([{"text": "x"}]),
           httpx.Response(200, json={"choices": []})]  # fmt: skip
    (fact,) = _extractor(bad, seen).extract([EVENT], GUIDE)
    assert len(seen) == 3 and fact.extractor == "rules" and fact.text == "Caroline lives in Oslo."
    assert fact.categories == ["places"]  # the rules tag by keyword ("Oslo")


def test_guide_tags_by_name_and_keywords_as_whole_words() -> None:
    guide = Guide(categories=(Category("food", ("pizza", "ice cream")), Category("work")))
    assert guide.tag("Melanie loves Ice Cream and pizza.") == ["food"]
    assert guide.tag("Jon works at a bakery.") == []  # "work" is not a word of "works"
    assert guide.tag("Food and work.") == ["food", "work"]


def test_without_categories_the_prompt_asks_for_none() -> None:
    system = build_messages([EVENT])[0]["content"]
    assert "Project instructions" not in system and "categories []" in system
