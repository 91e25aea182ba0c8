"""The short-term (working) memory store: per-session pieces, ordered by event time.

A piece is one kept chunk of one event, with its embedding. The store keeps them per
(tenant, session) in event-time order, remembers which sessions a user has, and answers
nothing else: segmentation, budgets and promotion are memory logic in ``memsvc.tiers``.
Everything here is derived from the SQL event log and can be rebuilt from it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

import numpy as np

__all__ = ["Piece", "ShortTermStore"]


@dataclass
class Piece:
    """One chunk of one event in working memory."""

    id: str  # "<event pk:012d>.<n>": unique, and sorts in arrival order
    event_id: str
    event_pk: int
    session_id: str
    user_id: str | None
    agent_id: str | None
    role: str
    speaker: str | None
    text: str  # what was embedded: "Speaker: content"
    event_time: datetime
    vector: np.ndarray
    tokens: int


class ShortTermStore(ABC):
    """Per-session working memory. Implementations: in-process (embedded) and Redis (stack)."""

    @abstractmethod
    def add(self, tenant_id: str, pieces: list[Piece]) -> None:
        """Add pieces (any sessions); re-adding a piece id replaces it."""

    @abstractmethod
    def pieces(self, tenant_id: str, session_id: str) -> list[Piece]:
        """The session's pieces, oldest event first (ties in arrival order)."""

    @abstractmethod
    def remove(self, tenant_id: str, session_id: str, piece_ids: list[str]) -> None:
        """Forget pieces (after they reached long-term memory)."""

    @abstractmethod
    def sessions_of_user(self, tenant_id: str, user_id: str | None) -> list[str]:
        """Sessions of a user (``None``: sessions without a user) that hold pieces."""

    @abstractmethod
    def clear(self, tenant_id: str, session_id: str) -> None:
        """Drop a session's working memory entirely."""

    def forget_user(self, tenant_id: str, user_id: str) -> None:
        """Drop the working memory of every session of the user, and the user's entry (a
        purge: nothing of the user stays, not even its id)."""
        for session_id in self.sessions_of_user(tenant_id, user_id):
            self.clear(tenant_id, session_id)

    def ping(self) -> bool:
        """Whether the backing service answers."""
        return True

    def intact(self) -> bool:
        """False when the store lost what it held (a Redis restarted empty): refill it."""
        return True

    def mark_intact(self) -> None:  # noqa: B027 - optional hook
        """Note that the store is being refilled (``intact`` is True until it is lost again)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
