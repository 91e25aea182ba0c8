"""What an extractor reads (events) and writes (candidate facts), and its one method."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "CANDIDATE_KINDS",
    "NO_GUIDE",
    "Candidate",
    "Category",
    "Extractor",
    "Guide",
    "SourceEvent",
]

CANDIDATE_KINDS = ("fact", "preference", "plan", "event")


@dataclass(frozen=True)
class SourceEvent:
    """One chat event as extraction sees it."""

    id: str
    speaker: str | None
    role: str
    text: str
    time: datetime


@dataclass
class Candidate:
    """A statement worth remembering, before it is merged into long-term memory.

    ``event_ids`` are exactly the events whose content it states. ``slot`` names a single-valued
    attribute of a subject (``"caroline|lives_in"``): a newer candidate with the same slot and
    another ``value`` closes the older fact's validity.
    """

    text: str
    kind: str
    event_ids: tuple[str, ...]
    subject: str
    occurred_at: datetime
    valid_from: datetime
    slot: str | None = None
    value: str | None = None
    sentence: str = ""  # the sentence as said (episodes quote it)
    extractor: str = "rules"
    entities: list[tuple[str, str]] = field(default_factory=list)  # (name, type) if known
    categories: list[str] = field(default_factory=list)  # names from the project's Guide


@dataclass(frozen=True)
class Category:
    """A project's label for memories: its ``name`` and the words that signal it."""

    name: str
    keywords: tuple[str, ...] = ()
    description: str = ""

    def matches(self, text: str) -> bool:
        """Whether ``text`` says the name or one of the keywords (whole words, any case)."""
        words = (self.name, *self.keywords)
        return any(
            re.search(rf"(?<!\w){re.escape(w.strip())}(?!\w)", text, re.I)
            for w in words
            if w.strip()
        )


@dataclass(frozen=True)
class Guide:
    """A project's extraction configuration: instructions the LLM extractor adds to its
    prompt, and categories (the LLM picks them; the rules extractor matches keywords)."""

    instructions: str = ""
    categories: tuple[Category, ...] = ()
    version: int = 0  # the stored version it came from; 0: none stored

    def tag(self, text: str) -> list[str]:
        """The names of the categories whose keywords ``text`` contains, in config order."""
        return [c.name for c in self.categories if c.matches(text)]


NO_GUIDE = Guide()


class Extractor(ABC):
    """Turns a batch of events into candidate facts, preferences, plans and events."""

    name: str = "base"

    @abstractmethod
    def extract(self, events: list[SourceEvent], guide: Guide = NO_GUIDE) -> list[Candidate]:
        """Candidates in event order; every ``event_ids`` entry is one of ``events``."""

    def close(self) -> None:  # noqa: B027 - optional hook, most extractors hold nothing
        """Release what the extractor holds (an HTTP client); nothing by default."""
