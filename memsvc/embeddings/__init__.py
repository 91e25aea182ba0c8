"""Embedders behind one small interface; pick one with ``MEMSVC_EMBEDDER``."""

from __future__ import annotations

from memsvc.embeddings.base import Embedder
from memsvc.embeddings.hashing import HashingEmbedder
from memsvc.settings import Settings

__all__ = ["Embedder", "HashingEmbedder", "build_embedder"]


def build_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name."""
    if settings.embedder == "hash":
        return HashingEmbedder(settings.hash_embedder_dim)
    from memsvc.embeddings.minilm import MiniLMEmbedder

    return MiniLMEmbedder(
        settings.embedder_model_path,
        batch_size=settings.embed_batch_size,
        threads=settings.embed_threads,
    )
