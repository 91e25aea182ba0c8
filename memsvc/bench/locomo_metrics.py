"""LoCoMo retrieval metrics, as defined in BENCHMARKS.md section 1.

- ``ev@10``: share of a question's evidence turns in the audited provenance of the top 10.
- ``ev@250w``: the same over results taken whole, in rank order, while they fit 250 words.
- ``ans@1k``: share of the answer's content words present in the first 1,000 words.
A claimed ``dia_id`` counts only if the result's text shares at least 2 content words, or 25%
of the turn's content words, with that turn.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from memsvc.retrieval.text import STOP_WORDS

__all__ = ["DumpedResult", "QuestionScore", "content_words", "score_question"]

_WORD = re.compile(r"\w+")


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS}


@dataclass(frozen=True)
class DumpedResult:
    text: str
    dia_ids: tuple[str, ...]


@dataclass(frozen=True)
class QuestionScore:
    ev_at_10: float
    ev_at_250w: float
    ans_at_1k: float


def _audited(result: DumpedResult, turns: Mapping[str, str]) -> set[str]:
    words = content_words(result.text)
    kept = set()
    for dia_id in result.dia_ids:
        turn_words = content_words(turns.get(dia_id, ""))
        shared = len(words & turn_words)
        if shared >= 2 or (turn_words and shared >= 0.25 * len(turn_words) and shared > 0):
            kept.add(dia_id)
    return kept


def _within_words(results: Sequence[DumpedResult], limit: int) -> list[DumpedResult]:
    taken, used = [], 0
    for result in results:
        words = len(result.text.split())
        if used + words > limit:
            break
        taken.append(result)
        used += words
    return taken


def _recall(
    results: Sequence[DumpedResult], evidence: Sequence[str], turns: Mapping[str, str]
) -> float:
    found: set[str] = set()
    for result in results:
        found |= _audited(result, turns)
    return len(found & set(evidence)) / len(evidence)


def score_question(
    results: Sequence[DumpedResult],
    evidence: Sequence[str],
    answer: str,
    turns: Mapping[str, str],
) -> QuestionScore:
    """The three metrics for one question (``evidence`` non-empty)."""
    answer_words = content_words(answer)
    first_1k = " ".join(" ".join(r.text for r in results).split()[:1000])
    ans = len(answer_words & content_words(first_1k)) / len(answer_words) if answer_words else 0.0
    return QuestionScore(
        ev_at_10=_recall(results[:10], evidence, turns),
        ev_at_250w=_recall(_within_words(results, 250), evidence, turns),
        ans_at_1k=ans,
    )
