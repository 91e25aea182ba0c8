"""Short-term (working) memory logic: topic segments under a token budget.

Pieces of one session, in event-time order, are grouped into topic segments: a new segment
starts when a piece's embedding turns away from the previous piece's (cosine below a threshold),
after a long pause, or when the segment is full. When the session holds more tokens than its
budget, its oldest segments are due for long-term memory (overflow).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from memsvc.config.tiers import WorkingMemoryConfig
from stores.short_term import Piece

__all__ = ["Segment", "overflow", "segment"]


@dataclass
class Segment:
    """Consecutive pieces of one session about one topic."""

    pieces: list[Piece]

    @property
    def id(self) -> str:
        return self.pieces[0].id

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.pieces)

    @property
    def start(self) -> datetime:
        return self.pieces[0].event_time

    @property
    def end(self) -> datetime:
        return self.pieces[-1].event_time

    @property
    def event_ids(self) -> list[str]:
        return list(dict.fromkeys(p.event_id for p in self.pieces))


def _boundary(previous: Piece, piece: Piece, tokens: int, config: WorkingMemoryConfig) -> bool:
    if tokens + piece.tokens > config.segment_max_tokens:
        return True
    gap = (piece.event_time - previous.event_time).total_seconds()
    if gap > config.segment_max_gap_seconds:
        return True
    similarity = float(np.dot(previous.vector, piece.vector))
    return similarity < config.segment_similarity


def segment(pieces: list[Piece], config: WorkingMemoryConfig) -> list[Segment]:
    """Topic segments of one session's pieces (given oldest first)."""
    segments: list[Segment] = []
    for piece in pieces:
        if segments and not _boundary(segments[-1].pieces[-1], piece, segments[-1].tokens, config):
            segments[-1].pieces.append(piece)
        else:
            segments.append(Segment([piece]))
    return segments


def overflow(segments: list[Segment], config: WorkingMemoryConfig) -> list[Segment]:
    """The oldest segments to move out so the rest fits the budget (the newest always stays)."""
    total = sum(s.tokens for s in segments)
    due: list[Segment] = []
    for seg in segments[:-1]:
        if total <= config.token_budget:
            break
        due.append(seg)
        total -= seg.tokens
    return due
