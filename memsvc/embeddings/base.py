"""The embedder interface: texts in, L2-normalised float32 rows out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

__all__ = ["Embedder"]


class Embedder(ABC):
    """Turns text into unit vectors; cosine similarity is then a dot product."""

    #: A stable name stored beside each embedding (a model change means re-embedding).
    name: str
    #: Vector width.
    dim: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a batch: ``[len(texts), dim]`` float32, rows L2-normalised."""

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query: ``[dim]`` float32."""
        return self.embed([text])[0]

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes; the default is a stated approximation (4 characters a token)."""
        return max(1, (len(text) + 3) // 4)

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        """:meth:`count_tokens` of each text (a tokenizer may do them in one call)."""
        return [self.count_tokens(text) for text in texts]
