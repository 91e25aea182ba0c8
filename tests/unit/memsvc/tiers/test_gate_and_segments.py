"""Sensory gate and working-memory segmentation: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from memsvc.config.tiers import SensoryConfig, WorkingMemoryConfig
from memsvc.tiers.sensory import gate
from memsvc.tiers.working import overflow, segment
from stores.short_term import Piece

CONFIG = SensoryConfig()


def test_filler_is_dropped_content_is_kept() -> None:
    for filler in ["ok", "Thanks!", "haha yeah", "Hi there", "ok, thank you so much!!", "  "]:
        decision = gate(filler, CONFIG)
        assert not decision.kept, filler
    assert gate("", CONFIG).decision == "dropped:empty"
    assert gate("ok", CONFIG).decision == "dropped:filler"
    for content in ["Thanks, I'll try that recipe", "No, I moved to Oslo", "I adopted a cat"]:
        decision = gate(content, CONFIG)
        assert decision.kept and decision.pieces == (content,), content
    assert gate("ok", SensoryConfig(enabled=False)).kept


def test_long_messages_split_at_sentences() -> None:
    sentence = "I went hiking in the hills near Oslo with my sister last weekend. "
    content = sentence * 30
    decision = gate(content, SensoryConfig(max_piece_chars=200))
    assert decision.kept and len(decision.pieces) > 1
    assert all(len(p) <= 200 for p in decision.pieces)
    assert all(p.endswith("weekend.") for p in decision.pieces)
    assert " ".join(decision.pieces) == content.strip()
    endless = "word " * 500
    pieces = gate(endless, SensoryConfig(max_piece_chars=100)).pieces
    assert all(len(p) <= 100 for p in pieces) and " ".join(pieces) == endless.strip()


def _piece(n: int, vector: list[float], minutes: int, tokens: int = 10) -> Piece:
    v = np.asarray(vector, dtype=np.float32)
    return Piece(
        id=f"{n:012d}.0",
        event_id=f"e{n}",
        event_pk=n,
        session_id="s",
        user_id="u",
        agent_id=None,
        role="user",
        speaker="A",
        text=f"piece {n}",
        event_time=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        vector=v / np.linalg.norm(v),
        tokens=tokens,
    )


def test_segments_break_on_topic_gap_and_size() -> None:
    config = WorkingMemoryConfig(segment_similarity=0.5, segment_max_tokens=30)
    pieces = [
        _piece(1, [1, 0], 0),
        _piece(2, [0.9, 0.1], 1),  # same topic
        _piece(3, [0, 1], 2),  # topic change
        _piece(4, [0.05, 1], 200),  # long pause
        _piece(5, [0, 1], 201),
        _piece(6, [0, 1], 202),
        _piece(7, [0, 1], 203),  # size cap
    ]
    segments = segment(pieces, config)
    assert [[p.event_pk for p in s.pieces] for s in segments] == [[1, 2], [3], [4, 5, 6], [7]]
    assert segments[2].tokens == 30 and segments[0].event_ids == ["e1", "e2"]


def test_overflow_takes_oldest_segments_until_within_budget() -> None:
    config = WorkingMemoryConfig(token_budget=64, segment_similarity=0.9)
    pieces = [_piece(n, [1, 0] if n % 2 else [0, 1], n, tokens=20) for n in range(6)]
    segments = segment(pieces, config)
    assert len(segments) == 6
    due = overflow(segments, config)
    assert [s.pieces[0].event_pk for s in due] == [0, 1, 2]  # 120 -> 60 tokens
    assert overflow(segments[:1], WorkingMemoryConfig(token_budget=64)) == []
