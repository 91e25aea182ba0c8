"""Extraction through any OpenAI-compatible chat endpoint (``MEMSVC_LLM_BASE_URL``).

The model is asked for JSON matching :data:`RESPONSE_SCHEMA` under strict structured output
(``response_format: json_schema, strict: true``), a schema written to the strict rules
(:func:`memsvc.extraction.strict.strict_schema_problems` checks it). The answer is validated
with pydantic, and every fact must cite events of the batch.

How it fails, on purpose (docs/architecture.md, "Consolidation"):

- a **4xx** from the endpoint (bad model name, a schema it refuses, a wrong key) is a
  configuration error that retrying cannot fix: :class:`ExtractionRejected`, raised at once,
  with the endpoint's own message. A consolidation job fails with it; ``infer=True`` answers 502.
- a **5xx, a timeout or no connection** is retried (``max_attempts`` in all), then
  :class:`ExtractionUnavailable`: a consolidation job goes back to the queue (Celery retries
  it with backoff); ``infer=True`` answers 503 with ``Retry-After``.
- a **malformed answer** (not the schema's JSON, or citing unknown events) is asked again; if
  it stays malformed, the batch uses the deterministic extractor and says so in the log and
  in each fact's ``metadata.extractor`` ("rules"). That is a model's quality problem, not a
  broken configuration.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ValidationError

from memsvc.extraction.base import (
    NO_GUIDE,
    Candidate,
    Category,
    Extractor,
    Guide,
    SourceEvent,
)
from memsvc.extraction.slots import entity_key

__all__ = [
    "RESPONSE_SCHEMA",
    "ExtractionError",
    "ExtractionRejected",
    "ExtractionUnavailable",
    "LLMExtraction",
    "OpenAICompatExtractor",
    "build_messages",
]

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You extract long-term memories from a chat. Return only statements the speakers make "
    "about themselves or people, places and things they name: facts, preferences, plans and "
    "events. Write each as one self-contained sentence in the third person, naming the "
    "subject, with relative dates resolved against the message time. Cite the ids of exactly "
    "the messages each statement comes from. For a single-valued attribute (where someone "
    "lives, their job, a favourite), give attribute and value; otherwise null. occurred_on is "
    "the ISO date the statement happened on, or null."
)

KINDS = ["fact", "preference", "plan", "event"]
ENTITY_TYPES = ["person", "place", "organisation", "thing", "activity"]


def _nullable_string(description: str) -> dict[str, Any]:
    return {"type": ["string", "null"], "description": description}


# Written out by hand, to the strict structured-output rules: every object closed
# (additionalProperties false), every property required, "null" in the type instead of an
# optional property, no defaults and no keywords strict mode refuses (minLength, prefixItems).
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["facts"],
    "properties": {
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "text",
                    "kind",
                    "subject",
                    "event_ids",
                    "occurred_on",
                    "attribute",
                    "value",
                    "entities",
                    "categories",
                ],
                "properties": {
                    "text": {"type": "string", "description": "One third-person sentence."},
                    "kind": {"type": "string", "enum": KINDS},
                    "subject": {"type": "string", "description": "Who or what it is about."},
                    "event_ids": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Ids of exactly the messages it comes from.",
                    },
                    "occurred_on": _nullable_string("ISO date it happened on, or null."),
                    "attribute": _nullable_string("Single-valued attribute, e.g. lives_in."),
                    "value": _nullable_string("The attribute's value, or null."),
                    "entities": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "type"],
                            "properties": {
                                "name": {"type": "string"},
                                "type": {"type": "string", "enum": ENTITY_TYPES},
                            },
                        },
                    },
                    "categories": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Names of the project's categories that apply.",
                    },
                },
            },
        }
    },
}


class _Entity(BaseModel):
    name: str
    type: Literal["person", "place", "organisation", "thing", "activity"]


class _Fact(BaseModel):
    # Mirrors RESPONSE_SCHEMA (a unit test checks the two agree); the limits that strict mode
    # cannot express are checked here, after the answer came.
    text: str
    kind: Literal["fact", "preference", "plan", "event"]
    subject: str
    event_ids: list[str]
    occurred_on: datetime | None
    attribute: str | None
    value: str | None
    entities: list[_Entity]
    categories: list[str]


class LLMExtraction(BaseModel):
    """The JSON the model must return."""

    facts: list[_Fact]


class ExtractionError(Exception):
    """The LLM endpoint did not give an extraction; ``status`` is its HTTP status, if any."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ExtractionRejected(ExtractionError):
    """The endpoint refused the request (4xx): a configuration error, never retried."""


class ExtractionUnavailable(ExtractionError):
    """The endpoint failed (5xx) or could not be reached in time, on every attempt."""


class _Malformed(ValueError):
    """The model's answer is not valid JSON of the schema, or cites unknown events."""


def _endpoint_message(response: httpx.Response) -> str:
    """The endpoint's own words: OpenAI's ``{"error": {"message": ...}}``, or the body."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except ValueError:
        pass
    return response.text[:300] or response.reason_phrase


def _category_line(category: Category) -> str:
    """``- name: description; keywords: a, b`` (the parts it has)."""
    parts = [category.description.strip().rstrip(".")] if category.description.strip() else []
    if category.keywords:
        parts.append("keywords: " + ", ".join(category.keywords))
    return f"- {category.name}" + (": " + "; ".join(parts) if parts else "")


def build_messages(events: list[SourceEvent], guide: Guide = NO_GUIDE) -> list[dict[str, str]]:
    """The chat messages of a request: the task, the project's instructions and categories,
    then the events as JSON lines the facts cite by id."""
    system = SYSTEM_PROMPT
    if guide.instructions.strip():
        system += "\n\nProject instructions:\n" + guide.instructions.strip()
    if guide.categories:
        listed = "\n".join(_category_line(c) for c in guide.categories)
        system += "\n\nCategories (give each fact the names that apply, [] when none):\n" + listed
    else:
        system += "\n\nThere are no categories: give every fact categories []."
    lines = [
        {"id": e.id, "time": e.time.isoformat(), "speaker": e.speaker or e.role, "text": e.text}
        for e in events
    ]
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": json.dumps(lines, ensure_ascii=False)},
    ]


class OpenAICompatExtractor(Extractor):
    """Chat-completions extraction with validation, retries, and loud failures."""

    name = "llm"

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        fallback: Extractor,
        api_key: str = "",
        timeout: float = 60.0,
        max_attempts: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, headers=headers, transport=transport
        )
        self.model = model
        self.fallback = fallback  # for answers that stay malformed only
        self.max_attempts = max_attempts

    def close(self) -> None:
        self._http.close()

    def _request(self, events: list[SourceEvent], guide: Guide) -> dict[str, Any]:
        return {
            "model": self.model,
            "temperature": 0,
            "messages": build_messages(events, guide),
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "memories", "strict": True, "schema": RESPONSE_SCHEMA},
            },
        }

    def _parse(self, payload: Any, events: list[SourceEvent], guide: Guide) -> list[Candidate]:
        try:
            content = payload["choices"][0]["message"]["content"]
            parsed = LLMExtraction.model_validate_json(content)
        except (KeyError, IndexError, TypeError, ValidationError) as exc:
            raise _Malformed(str(exc)[:300]) from exc
        by_id = {e.id: e for e in events}
        known_categories = {c.name for c in guide.categories}
        candidates = []
        for fact in parsed.facts:
            if not fact.text.strip() or not fact.subject.strip() or not fact.event_ids:
                raise _Malformed("a fact without text, subject or event ids")
            unknown = set(fact.event_ids) - set(by_id)
            if unknown:
                raise _Malformed(f"cites unknown events {sorted(unknown)}")
            said = max(by_id[i].time for i in fact.event_ids)
            slot = fact.attribute and fact.value
            candidates.append(
                Candidate(
                    text=fact.text.strip()[:1000],
                    kind=fact.kind,
                    event_ids=tuple(dict.fromkeys(fact.event_ids)),
                    subject=fact.subject.strip()[:200],
                    occurred_at=fact.occurred_on or said,
                    valid_from=said,
                    slot=f"{entity_key(fact.subject)}|{fact.attribute.lower()[:100]}"
                    if slot and fact.attribute
                    else None,
                    value=fact.value.lower()[:200] if slot and fact.value else None,
                    sentence=" ".join(by_id[i].text for i in fact.event_ids)[:500],
                    extractor=self.name,
                    entities=[(e.name, e.type) for e in fact.entities if e.name.strip()],
                    # Only the project's own names: a model's invented label is dropped.
                    categories=[c for c in dict.fromkeys(fact.categories) if c in known_categories],
                )
            )
        return candidates

    def extract(self, events: list[SourceEvent], guide: Guide = NO_GUIDE) -> list[Candidate]:
        if not events:
            return []
        request = self._request(events, guide)
        unavailable = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._http.post("/chat/completions", json=request)
            except httpx.HTTPError as exc:  # connect error, timeout
                unavailable = f"{type(exc).__name__}: {exc}"
                log.warning("LLM extraction attempt %d failed: %s", attempt, unavailable)
                continue
            if 400 <= response.status_code < 500:
                message = _endpoint_message(response)
                raise ExtractionRejected(
                    f"the LLM endpoint refused the extraction request "
                    f"({response.status_code}): {message}",
                    status=response.status_code,
                )
            if response.status_code >= 500:
                unavailable = f"{response.status_code}: {_endpoint_message(response)}"
                log.warning("LLM extraction attempt %d failed: %s", attempt, unavailable)
                continue
            try:
                return self._parse(response.json(), events, guide)
            except (_Malformed, ValueError) as exc:
                log.warning("LLM extraction attempt %d malformed: %s", attempt, exc)
                unavailable = ""
        if unavailable:
            raise ExtractionUnavailable(
                f"the LLM endpoint failed {self.max_attempts} times; last: {unavailable}"
            )
        log.warning("LLM answers stayed malformed after %d attempts; using rules", attempt)
        return self.fallback.extract(events, guide)
