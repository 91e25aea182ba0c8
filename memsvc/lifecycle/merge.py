"""Merge rules: is a candidate new (ADD), a better wording (UPDATE) or already known (NOOP)?

Compared against the user's long-term memories that share its content hash, its slot or its
entities. Near-duplicates (cosine >= threshold, same subject) are one memory: the wording that
says more is kept and both provenances are merged. A candidate filling a slot with another
value is new, and contradicts (invalidates) the open fact holding that slot.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from memsvc.retrieval.text import STOP_WORDS, content_hash

__all__ = ["Decision", "Known", "content_words", "decide"]

_WORD = re.compile(r"\w+")
_NAME_OR_NUMBER = re.compile(r"(?<!^)(?<![.!?]\s)\b(?:[A-Z][\w'-]*|\d[\d.,:]*)")


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS)


def _identity(text: str) -> Counter[str]:
    """Names and numbers, counted: two statements that differ in one of these are two facts,
    however close their vectors ("visited Rome" is not "visited Paris"; "museum 7 on 7 May" is
    not "museum 5 on 7 May")."""
    return Counter(m.lower() for m in _NAME_OR_NUMBER.findall(text))


@dataclass
class Known:
    """A long-term memory as the merge rules see it."""

    pk: int
    text: str
    kind: str
    content_hash: str
    vector: np.ndarray
    slot: str | None
    value: str | None
    subject: str | None
    valid_from: datetime | None
    valid_to: datetime | None


@dataclass
class Decision:
    op: str  # ADD, UPDATE, NOOP
    target: Known | None = None  # the memory updated or confirmed
    contradicts: list[Known] = field(default_factory=list)  # open facts of the same slot


def decide(
    *,
    text: str,
    subject: str,
    slot: str | None,
    value: str | None,
    vector: np.ndarray,
    known: list[Known],
    threshold: float,
) -> Decision:
    """What to do with one candidate, given the memories it could duplicate or contradict."""
    digest = content_hash(text)
    for other in known:
        if other.content_hash == digest:
            return Decision("NOOP", other)
    if slot is not None:
        same_slot = [k for k in known if k.slot == slot and k.valid_to is None]
        agreeing = [k for k in same_slot if k.value == value]
        if agreeing:
            return Decision("NOOP", agreeing[0])
        if same_slot:
            return Decision("ADD", contradicts=same_slot)
    words = content_words(text)
    identity = _identity(text)
    best, best_score = None, threshold
    for other in known:
        if other.subject != subject or (other.slot and other.slot != slot):
            continue
        if not (identity <= _identity(other.text) or identity >= _identity(other.text)):
            continue
        score = float(np.dot(vector, other.vector))
        if score >= best_score:
            best, best_score = other, score
    if best is None:
        return Decision("ADD")
    if words > content_words(best.text):  # says strictly more: keep this wording
        return Decision("UPDATE", best)
    return Decision("NOOP", best)
