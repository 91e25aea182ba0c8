"""The retention rule for episodic KV caches (its settings: :mod:`memsvc.config.kv`).

Episodic caches age like other memories: after ``reencode_after_seconds`` without use a cache is
re-encoded at fewer bits (``reencode_preset``), and a tenant's episodic caches beyond its
retention budget are dropped, least used first and, among equally used ones, the longest unused
first. Trained cartridges are never touched by either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["KVCandidate", "plan_drops", "plan_reencode"]


@dataclass(frozen=True)
class KVCandidate:
    """What the rule needs to know about one episodic cache."""

    id: str
    size_bytes: int
    code_bits: float  # bits per element of its codes (raw: the dtype's width)
    created_at: datetime
    last_used_at: datetime | None
    use_count: int

    @property
    def last_touched(self) -> datetime:
        return self.last_used_at or self.created_at


def plan_reencode(
    caches: Sequence[KVCandidate], *, now: datetime, after_seconds: float, target_bits: float
) -> list[str]:
    """Caches untouched for ``after_seconds`` whose codes are wider than ``target_bits``."""
    cutoff = now - timedelta(seconds=after_seconds)
    return [c.id for c in caches if c.last_touched <= cutoff and c.code_bits > target_bits]


def plan_drops(caches: Sequence[KVCandidate], *, budget_bytes: int) -> list[str]:
    """The caches to drop so the rest fit ``budget_bytes``: least used first, then the longest
    unused (oldest ``last_used_at``/``created_at``) first."""
    total = sum(c.size_bytes for c in caches)
    drops: list[str] = []
    for c in sorted(caches, key=lambda c: (c.use_count, c.last_touched, c.id)):
        if total <= budget_bytes:
            break
        drops.append(c.id)
        total -= c.size_bytes
    return drops
