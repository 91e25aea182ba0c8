"""KV memory settings, and the retention rule for episodic caches.

Episodic caches age like other memories: after ``reencode_after_seconds`` without use a cache is
re-encoded at fewer bits (``reencode_preset``), and a tenant's episodic caches beyond its
retention budget are dropped, least used first and, among equally used ones, the longest unused
first. Trained cartridges are never touched by either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field

__all__ = ["KVCandidate", "KVConfig", "plan_drops", "plan_reencode"]

MiB = 1 << 20
GiB = 1 << 30
INT32_MAX = 2**31 - 1  # SQL INTEGER columns; also the RoPE position limit of the codec


class KVConfig(BaseModel):
    """``MEMSVC_KV__<NAME>`` in the environment."""

    # Blob directory of the local store (default: <data_dir>/blobs).
    blob_dir: Path | None = None
    # Per-tenant storage for every KV container (cartridges + episodic); kv_limits overrides.
    quota_bytes: int = Field(default=20 * GiB, ge=0)
    # The largest container one request may upload (streamed to disk, never held in RAM).
    max_upload_bytes: int = Field(default=8 * GiB, ge=1)
    # Per-tenant budget of episodic caches; consolidation drops the least used beyond it.
    retention_bytes: int = Field(default=4 * GiB, ge=0)
    # Episodic caches unused this long are re-encoded at ``reencode_preset`` (fewer bits).
    reencode_after_seconds: float = Field(default=86_400.0, ge=0)
    reencode_preset: str = "compact"
    # The largest claims an uploaded container (or ?spec=) may make, checked before anything
    # is allocated for them (kv_cartridges.limits.ContainerLimits); 422 beyond. The body's
    # size bounds them too: every tensor must be in the file, byte for byte.
    max_header_bytes: int = Field(default=4 * MiB, ge=1024, le=64 * MiB)
    max_layers: int = Field(default=512, ge=1)
    max_batch: int = Field(default=64, ge=1)
    max_kv_heads: int = Field(default=256, ge=1)
    max_head_dim: int = Field(default=1024, ge=1)
    max_tokens: int = Field(default=262_144, ge=1, le=INT32_MAX)  # kv_caches.n_tokens
    max_start_position: int = Field(default=INT32_MAX, ge=0, le=INT32_MAX)  # and RoPE's
    max_group_size: int = Field(default=4096, ge=1)
    max_sink_tokens: int = Field(default=1024, ge=0)
    max_window_tokens: int = Field(default=65_536, ge=0)
    # Blob collection: temporary upload files older than this are removed by the sweep.
    tmp_max_age_seconds: float = Field(default=86_400.0, gt=0)


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
