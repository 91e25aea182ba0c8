"""Demoting repeats: a result that shows only events already shown above it goes last.

A fact restating a message, an episode quoting turns already listed, a turn already quoted in
another result's exchange: each says nothing new to a prompt, so results that bring new events
come first. A memory written without provenance (no source events) is never a repeat.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Generic, TypeVar

__all__ = ["RepeatDemotion"]

_H = TypeVar("_H")


class RepeatDemotion(Generic[_H]):
    """Hits offered in rank order, split into those that bring new events and repeats."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._fresh: list[_H] = []
        self._repeats: list[_H] = []
        self._covered: set[str] = set()

    def offer(self, hit: _H, *, own: Set[str], shown: Set[str]) -> None:
        """Take the next hit: ``own`` are the events its memory states, ``shown`` every event
        its result line shows (its exchange's included). It is a repeat when everything it
        shows was shown above; without ``own`` events (no provenance) it never is."""
        if self.enabled and own and shown <= self._covered:
            self._repeats.append(hit)
        else:
            self._fresh.append(hit)
            self._covered |= shown

    @property
    def fresh(self) -> int:
        """How many hits bring new events so far."""
        return len(self._fresh)

    def ordered(self, limit: int) -> list[_H]:
        """The first ``limit`` hits: those that bring new events, then the repeats."""
        return (self._fresh + self._repeats)[:limit]
