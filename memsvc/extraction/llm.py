"""Optional extraction through any OpenAI-compatible chat endpoint (``MEMSVC_LLM_BASE_URL``).

The model is asked for JSON matching a schema (``response_format: json_schema``); the answer
is validated with pydantic, and every fact must cite events of the batch. A malformed answer
is asked again (``max_attempts`` in all); if it stays malformed, or the endpoint cannot be
reached, the batch falls back to the deterministic extractor: extraction never fails.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Literal

import httpx
from pydantic import BaseModel, Field, ValidationError

from memsvc.extraction.base import Candidate, Extractor, SourceEvent
from memsvc.extraction.slots import entity_key

__all__ = ["LLMExtraction", "OpenAICompatExtractor"]

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You extract long-term memories from a chat. Return only statements the speakers make "
    "about themselves or people, places and things they name: facts, preferences, plans and "
    "events. Write each as one self-contained sentence in the third person, naming the "
    "subject, with relative dates resolved against the message time. Cite the ids of exactly "
    "the messages each statement comes from. For a single-valued attribute (where someone "
    "lives, their job, a favourite), give attribute and value."
)


class _Fact(BaseModel):
    text: str = Field(min_length=1, max_length=1000)
    kind: Literal["fact", "preference", "plan", "event"]
    subject: str = Field(min_length=1, max_length=200)
    event_ids: list[str] = Field(min_length=1)
    occurred_on: datetime | None = None
    attribute: str | None = Field(default=None, max_length=100)
    value: str | None = Field(default=None, max_length=200)
    entities: list[tuple[str, Literal["person", "place", "organisation", "thing", "activity"]]] = []


class LLMExtraction(BaseModel):
    """The JSON the model must return."""

    facts: list[_Fact]


class _Malformed(ValueError):
    """The model's answer is not valid JSON of the schema, or cites unknown events."""


class OpenAICompatExtractor(Extractor):
    """Chat-completions extraction with validation, retries and a deterministic fallback."""

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
        self.fallback = fallback
        self.max_attempts = max_attempts

    def close(self) -> None:
        self._http.close()

    def _request(self, events: list[SourceEvent]) -> dict:
        lines = [
            {"id": e.id, "time": e.time.isoformat(), "speaker": e.speaker or e.role, "text": e.text}
            for e in events
        ]
        return {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": json.dumps(lines, ensure_ascii=False)},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "memories",
                    "strict": True,
                    "schema": LLMExtraction.model_json_schema(),
                },
            },
        }

    def _parse(self, payload: dict, events: list[SourceEvent]) -> list[Candidate]:
        try:
            content = payload["choices"][0]["message"]["content"]
            parsed = LLMExtraction.model_validate_json(content)
        except (KeyError, IndexError, TypeError, ValidationError) as exc:
            raise _Malformed(str(exc)[:300]) from exc
        by_id = {e.id: e for e in events}
        candidates = []
        for fact in parsed.facts:
            unknown = set(fact.event_ids) - set(by_id)
            if unknown:
                raise _Malformed(f"cites unknown events {sorted(unknown)}")
            said = max(by_id[i].time for i in fact.event_ids)
            slot = fact.attribute and fact.value
            candidates.append(
                Candidate(
                    text=fact.text.strip(),
                    kind=fact.kind,
                    event_ids=tuple(dict.fromkeys(fact.event_ids)),
                    subject=fact.subject,
                    occurred_at=fact.occurred_on or said,
                    valid_from=said,
                    slot=f"{entity_key(fact.subject)}|{fact.attribute.lower()}" if slot else None,
                    value=fact.value.lower() if slot else None,
                    sentence=" ".join(by_id[i].text for i in fact.event_ids)[:500],
                    extractor=self.name,
                    entities=[(name, type_) for name, type_ in fact.entities],
                )
            )
        return candidates

    def extract(self, events: list[SourceEvent]) -> list[Candidate]:
        if not events:
            return []
        request = self._request(events)
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._http.post("/chat/completions", json=request)
                response.raise_for_status()
                return self._parse(response.json(), events)
            except (_Malformed, ValueError) as exc:
                log.warning("LLM extraction attempt %d malformed: %s", attempt, exc)
            except httpx.HTTPError as exc:
                log.warning("LLM extraction attempt %d failed: %s", attempt, exc)
        log.warning("LLM extraction gave up after %d attempts; using rules", self.max_attempts)
        return self.fallback.extract(events)
