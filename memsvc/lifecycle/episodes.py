"""Episode summaries: the few sentences that say most about a topic segment.

Extractive (SumBasic, Nenkova & Vanderwende 2005): each sentence scores the mean probability
of its content words in the segment; the best is taken, its words' probabilities squared so
the next pick says something else. Chosen sentences are shown in the order they were said.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from memsvc.lifecycle.merge import content_words
from memsvc.retrieval.render import format_day

__all__ = ["Line", "summarise"]

_MIN_WORDS = 3


@dataclass(frozen=True)
class Line:
    """One sentence of a segment, with what it was extracted as (if anything)."""

    event_id: str
    speaker: str
    text: str  # the statement to show (a rewritten fact, or "Speaker: sentence")
    time: datetime


def _pick(lines: list[Line], max_sentences: int) -> list[Line]:
    words = [content_words(line.text) for line in lines]
    counts = Counter(w for ws in words for w in ws)
    total = sum(counts.values()) or 1
    prob = {w: c / total for w, c in counts.items()}
    # Short lines ("Bob: nice.") score high on frequent words but say little.
    floor = _MIN_WORDS if any(len(ws) >= _MIN_WORDS for ws in words) else 1
    chosen: list[int] = []
    while len(chosen) < max_sentences:
        scored = [
            (sum(prob[w] for w in ws) / len(ws), -n)
            for n, ws in enumerate(words)
            if len(ws) >= floor and n not in chosen
        ]
        if not scored:
            break
        _, best = max(scored)
        chosen.append(-best)
        for w in words[-best]:
            prob[w] = prob[w] ** 2
    return [lines[n] for n in sorted(chosen)]


def summarise(lines: list[Line], max_sentences: int) -> tuple[str, list[Line]]:
    """The episode text and the lines it quotes (its provenance)."""
    picked = _pick(lines, max_sentences)
    speakers = list(dict.fromkeys(line.speaker for line in lines))
    who = " and ".join(speakers) if len(speakers) <= 2 else ", ".join(speakers)
    body = " ".join(line.text.rstrip() for line in picked)
    return f"{who}, {format_day(lines[0].time)}: {body}", picked
