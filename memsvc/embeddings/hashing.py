"""A deterministic feature-hashing embedder: no model, no download, stable across runs.

Used by the test suite (where the real model adds nothing) and usable for tiny deployments.
Words and character trigrams are hashed into signed buckets, so texts sharing words or word
pieces land close together.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from memsvc.embeddings.base import Embedder

__all__ = ["HashingEmbedder"]

_WORD = re.compile(r"\w+")


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, 1.0 if (value >> 63) & 1 else -1.0


class HashingEmbedder(Embedder):
    """Signed feature hashing of words (weight 1) and character trigrams (weight 0.5)."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.name = f"hash-{dim}"
        self._cache: dict[str, tuple[int, float]] = {}

    def _feature(self, feature: str) -> tuple[int, float]:
        hit = self._cache.get(feature)
        if hit is None:
            hit = self._cache[feature] = _bucket(feature, self.dim)
        return hit

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                index, sign = self._feature("w:" + word)
                out[row, index] += sign
                padded = f"#{word}#"
                for start in range(len(padded) - 2):
                    index, sign = self._feature("c:" + padded[start : start + 3])
                    out[row, index] += 0.5 * sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms
