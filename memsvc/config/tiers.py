"""Sensory and working memory (``MEMSVC_SENSORY__*``, ``MEMSVC_WORKING__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["SensoryConfig", "WorkingMemoryConfig"]


class SensoryConfig(BaseModel):
    """How the gate decides; the defaults are the recommended settings."""

    enabled: bool = True
    # A message with at most this many words, all of them filler words, is dropped.
    max_filler_words: int = Field(default=6, ge=0)
    # Pieces longer than this are split at sentence boundaries (then hard-wrapped).
    max_piece_chars: int = Field(default=600, ge=50)


class WorkingMemoryConfig(BaseModel):
    """Working-memory knobs; the defaults are the recommended settings."""

    token_budget: int = Field(default=2048, ge=64)
    segment_similarity: float = Field(default=0.3, ge=-1.0, le=1.0)
    segment_max_tokens: int = Field(default=512, ge=16)
    segment_max_gap_seconds: float = Field(default=1800.0, gt=0)
