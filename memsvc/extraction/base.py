"""What an extractor reads (events) and writes (candidate facts), and its one method."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["CANDIDATE_KINDS", "Candidate", "Extractor", "SourceEvent"]

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


class Extractor(ABC):
    """Turns a batch of events into candidate facts, preferences, plans and events."""

    name: str = "base"

    @abstractmethod
    def extract(self, events: list[SourceEvent]) -> list[Candidate]:
        """Candidates in event order; every ``event_ids`` entry is one of ``events``."""
