"""Text normalisation shared by the lexical index, hashing and dedupe."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import Stemmer

__all__ = ["SENTENCE_END", "STOP_WORDS", "content_hash", "normalise", "tokenize"]

_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
# Where one sentence ends and the next begins: the sensory gate cuts pieces here and search
# embeds the sentences of a piece, so both must split alike.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves s t d ll m o re ve y
    """.split()
)

_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop words dropped, Snowball-stemmed word tokens (for BM25)."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def normalise(text: str) -> str:
    """Whitespace collapsed and trimmed: what "the same text" means."""
    return _SPACE.sub(" ", text).strip()


def content_hash(text: str) -> str:
    """sha256 of the normalised, case-folded text."""
    return hashlib.sha256(normalise(text).casefold().encode()).hexdigest()
