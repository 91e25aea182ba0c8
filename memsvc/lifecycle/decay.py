"""The forgetting curve: strength = 2^(-age / half-life), reinforced by use.

Age is wall-clock time since the memory was last reinforced (written, retrieved or repeated),
never the time the memory talks about: a conversation from 2023 imported today is fresh. The
half-life grows with importance and doubles with every retrieval (spaced repetition), capped
so that a popular memory still decays eventually.
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["should_archive", "strength"]

_MAX_DOUBLINGS = 10


def strength(
    *,
    last_reinforced: datetime,
    now: datetime,
    importance: float,
    access_count: int,
    half_life_days: float,
) -> float:
    """Retention in (0, 1]: 1 when just reinforced, 0.5 after one half-life."""
    age_days = max(0.0, (now - last_reinforced).total_seconds() / 86_400)
    half_life = half_life_days * (1.0 + importance) * 2.0 ** min(access_count, _MAX_DOUBLINGS)
    return 2.0 ** (-age_days / half_life)


def should_archive(value: float, *, importance: float, below: float, pinned: float) -> bool:
    """Weak and not pinned by importance."""
    return value < below and importance < pinned
