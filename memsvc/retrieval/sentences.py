"""Sentence vectors of long memories, and query-focused snippets built from them.

A message that covers several topics embeds to a vector that matches none of them well. Its
sentences are embedded too (once, when it is promoted to long-term memory) and search scores
the memory by its best sentence as well as by its whole text. The same sentences give a result
its snippet: the ones closest to the query, so a prompt gets the relevant part of a long memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memsvc.embeddings import Embedder
from memsvc.retrieval.text import SENTENCE_END

__all__ = [
    "MAX_SENTENCES",
    "RankedSentences",
    "decode_vectors",
    "encode_sentences",
    "quoted_whole",
    "rank_sentences",
    "snippet",
    "split_sentences",
]

# Sentence ids in the sentence index are ``pk * MAX_SENTENCES + n``; later sentences are not
# embedded (a memory that long is rare: pieces are capped by the sensory gate).
MAX_SENTENCES = 16
# A sentence shorter than this many words ("Wow!") says too little to be scored on its own.
MIN_SENTENCE_WORDS = 3

_SPEAKER = re.compile(r"^([^:\n]{1,80}):\s+")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` worth a vector of their own, in order (at most 16).

    A leading ``Speaker:`` prefix (how messages are stored) is kept on each sentence, so a
    sentence embeds with who said it, as the whole message does. Texts of one sentence give [].
    """
    prefix = ""
    match = _SPEAKER.match(text)
    if match:
        prefix, text = match.group(0), text[match.end() :]
    sentences = [s.strip() for s in SENTENCE_END.split(text.strip()) if s.strip()]
    kept = [f"{prefix}{s}" for s in sentences if len(s.split()) >= MIN_SENTENCE_WORDS]
    return kept[:MAX_SENTENCES] if len(kept) > 1 else []


def encode_sentences(embedder: Embedder, texts: Sequence[str]) -> list[bytes | None]:
    """For each text, its sentences' vectors as one float32 blob (None for one sentence).

    All sentences of all texts go to the embedder in one batch.
    """
    split = [split_sentences(t) for t in texts]
    flat = [s for sentences in split for s in sentences]
    if not flat:
        return [None] * len(texts)
    vectors = np.asarray(embedder.embed(flat), dtype=np.float32)
    blobs: list[bytes | None] = []
    offset = 0
    for sentences in split:
        count = len(sentences)
        blobs.append(vectors[offset : offset + count].tobytes() if count else None)
        offset += count
    return blobs


def decode_vectors(blob: bytes | None, dim: int) -> np.ndarray:
    """A sentence-vector blob back to a ``[n, dim]`` array (``[0, dim]`` for None)."""
    if not blob:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(blob, dtype=np.float32).reshape(-1, dim)


@dataclass(frozen=True)
class RankedSentences:
    """A text's sentences ordered by closeness to a query: cut to any length without scoring
    them again (a search quotes a turn at one length as a result, at another as context)."""

    prefix: str  # the speaker prefix, kept once at the front
    bodies: list[str]
    best_first: list[int]

    def cut(self, max_words: int) -> str:
        """The closest sentences, in text order, within ``max_words`` (at least the closest
        one); cut places marked with an ellipsis."""
        chosen: list[int] = []
        used = len(self.prefix.split())
        for n in self.best_first:
            words = len(self.bodies[n].split())
            if chosen and used + words > max_words:
                continue
            chosen.append(n)
            used += words
        chosen.sort()
        parts: list[str] = []
        for position, n in enumerate(chosen):
            if (position == 0 and n > 0) or (position > 0 and n != chosen[position - 1] + 1):
                parts.append("…")
            parts.append(self.bodies[n])
        if chosen[-1] != len(self.bodies) - 1:
            parts.append("…")
        return self.prefix + " ".join(parts)


def rank_sentences(
    text: str, blob: bytes | None, query_vector: np.ndarray
) -> RankedSentences | None:
    """``text``'s sentences, closest to the query first; None without sentence vectors."""
    if not blob:
        return None
    sentences = split_sentences(text)
    vectors = decode_vectors(blob, len(query_vector))
    if len(sentences) != len(vectors) or not sentences:
        return None  # the text changed since its sentences were embedded
    match = _SPEAKER.match(text)
    prefix = match.group(0) if match else ""
    order = np.argsort(-(vectors @ query_vector), kind="stable")
    return RankedSentences(prefix, [s[len(prefix) :] for s in sentences], order.tolist())


def quoted_whole(text: str, blob: bytes | None, max_words: int) -> bool:
    """Whether ``text`` goes into a prompt whole: it fits ``max_words``, or it has no sentence
    vectors to cut it by. The cheap tests, before any sentence is ranked."""
    return not blob or len(text.split()) <= max_words


def snippet(text: str, blob: bytes | None, query_vector: np.ndarray, max_words: int) -> str | None:
    """The sentences of ``text`` closest to the query, in their order, within ``max_words``.

    None when the text already fits (or has no sentence vectors): the whole text is the snippet.
    Cut places are marked with an ellipsis; the speaker prefix is kept once, at the front.
    """
    if quoted_whole(text, blob, max_words):
        return None
    ranked = rank_sentences(text, blob, query_vector)
    return ranked.cut(max_words) if ranked else None
