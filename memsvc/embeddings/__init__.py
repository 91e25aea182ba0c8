"""Embedders behind one small interface; pick one with ``MEMSVC_EMBEDDER``."""

from __future__ import annotations

from pathlib import Path

from memsvc.embeddings.base import Embedder
from memsvc.embeddings.hashing import HashingEmbedder
from memsvc.settings import Settings

__all__ = ["Embedder", "HashingEmbedder", "build_embedder", "onnx_cache_dir"]


def onnx_cache_dir(settings: Settings) -> Path:
    """Where the ONNX exports of the MiniLM live: inside the data directory."""
    return Path(settings.data_dir) / "models" / "minilm-onnx"


def build_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name."""
    if settings.embedder == "hash":
        return HashingEmbedder(settings.hash_embedder_dim)
    if settings.embedder_backend in ("onnx", "onnx-int8"):
        from memsvc.embeddings.onnx import OnnxMiniLMEmbedder

        return OnnxMiniLMEmbedder(
            onnx_cache_dir(settings),
            settings.embedder_model_path,
            int8=settings.embedder_backend == "onnx-int8",
            batch_size=settings.embed_batch_size,
            threads=settings.embed_threads,
        )
    from memsvc.embeddings.minilm import MiniLMEmbedder

    return MiniLMEmbedder(
        settings.embedder_model_path,
        batch_size=settings.embed_batch_size,
        threads=settings.embed_threads,
    )
