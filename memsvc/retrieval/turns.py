"""Conversation order of message memories: each turn's neighbours in its session.

The answer to a question is often not in the turn that matches it but in the next one ("What
made you leave?" / "I wanted to focus on ..."). Search lets a matching turn lend part of its
score to its neighbours (see :func:`spread_to_neighbours`); this catalog says who they are.
It is derived from SQL like the other indexes and rebuilt at start-up.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Hashable
from datetime import datetime

from memsvc.config.retrieval import NeighbourWeights

__all__ = ["NeighbourWeights", "TurnCatalog", "spread_to_neighbours", "spread_within"]

SessionKey = tuple[str, str, str]  # tenant, user, session
_Position = tuple[float, int]  # event time (epoch seconds), pk


class TurnCatalog:
    """Message memories in session order, with which of them ask a question."""

    def __init__(self) -> None:
        self._where: dict[int, tuple[SessionKey, _Position]] = {}
        self._order: dict[SessionKey, list[_Position]] = {}
        self._asks: set[int] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._where)

    def upsert(self, pk: int, key: SessionKey, occurred_at: datetime, text: str) -> None:
        """Place (or move) a message memory in its session's order."""
        with self._lock:
            self._drop(pk)
            position = (occurred_at.timestamp(), pk)
            self._where[pk] = (key, position)
            bisect.insort(self._order.setdefault(key, []), position)
            if "?" in text:
                self._asks.add(pk)

    def remove(self, pks: list[int]) -> None:
        with self._lock:
            for pk in pks:
                self._drop(pk)

    def _drop(self, pk: int) -> None:
        found = self._where.pop(pk, None)
        self._asks.discard(pk)
        if found is None:
            return
        key, position = found
        order = self._order[key]
        del order[bisect.bisect_left(order, position)]
        if not order:
            del self._order[key]

    def neighbours(self, pk: int) -> tuple[int | None, int | None]:
        """The turns just before and just after ``pk`` in its session (None at the ends)."""
        with self._lock:
            found = self._where.get(pk)
            if found is None:
                return None, None
            key, position = found
            order = self._order[key]
            n = bisect.bisect_left(order, position)
            before = order[n - 1][1] if n > 0 else None
            after = order[n + 1][1] if n + 1 < len(order) else None
            return before, after

    def asks(self, pk: int) -> bool:
        """Whether the turn contains a question (its answer is likely the next turn)."""
        return pk in self._asks

    def exchange(self, pk: int) -> tuple[list[int], list[int]]:
        """The turns around ``pk`` that make it read on its own, before and after it, in order.

        A question is read with its answer (the turn after it). An answer is read with its
        question (the turn before it) and the statement that question was about (the turn
        before that, unless it asks too). A statement someone asks about is read with that
        question and its answer. So "I finished my screenplay" and "Drama and romance" each
        come with the other two turns of "I finished my screenplay" / "What is it about?" /
        "Drama and romance". Nothing is added around a turn that neither asks nor answers.
        """
        before, after = self.neighbours(pk)
        turns_before: list[int] = []
        turns_after: list[int] = []
        if before is not None and self.asks(before):
            turns_before.append(before)
            statement = self.neighbours(before)[0]
            if statement is not None and not self.asks(statement):
                turns_before.insert(0, statement)
        if after is not None and (self.asks(pk) or self.asks(after)):
            turns_after.append(after)
            if not self.asks(pk):  # a question about ``pk``: its answer too
                answer = self.neighbours(after)[1]
                if answer is not None:
                    turns_after.append(answer)
        return turns_before, turns_after

    def clear(self) -> None:
        with self._lock:
            self._where.clear()
            self._order.clear()
            self._asks.clear()


def spread_to_neighbours(
    scores: dict[Hashable, float], catalog: TurnCatalog, weights: NeighbourWeights
) -> dict[Hashable, float]:
    """Scores plus what each scored turn lends its neighbours (computed from the input scores,
    so the result does not depend on the order turns are visited)."""
    spread = dict(scores)
    for pk, score in scores.items():
        if not isinstance(pk, int) or score <= 0:
            continue
        before, after = catalog.neighbours(pk)
        if after is not None:
            share = weights.after_question if catalog.asks(pk) else weights.after
            spread[after] = spread.get(after, 0.0) + share * score
            # The answer to a question the next turn asks (its own next turn).
            _lend_past_question(spread, catalog, after, 1, weights.answer * score)
        if before is not None:
            spread[before] = spread.get(before, 0.0) + weights.before * score
            # The statement a question in the previous turn asks about (its own previous turn).
            _lend_past_question(spread, catalog, before, 0, weights.statement * score)
    return spread


def _lend_past_question(
    spread: dict[Hashable, float], catalog: TurnCatalog, question: int, side: int, amount: float
) -> None:
    """Add ``amount`` to the turn beyond ``question`` on ``side`` (0 before, 1 after) when
    that turn asks a question."""
    if amount and catalog.asks(question):
        beyond = catalog.neighbours(question)[side]
        if beyond is not None:
            spread[beyond] = spread.get(beyond, 0.0) + amount


def spread_within(
    scores: dict[Hashable, float],
    catalog: TurnCatalog,
    weights: NeighbourWeights,
    allowed: set[int] | None,
) -> dict[Hashable, float]:
    """:func:`spread_to_neighbours`, keeping only neighbours the request's filters allow
    (``allowed``; None allows all): a neighbour was not filtered by the candidates stage."""
    spread = spread_to_neighbours(scores, catalog, weights)
    if allowed is None:
        return spread
    return {pk: s for pk, s in spread.items() if pk in scores or pk in allowed}
