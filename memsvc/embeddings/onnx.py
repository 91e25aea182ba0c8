"""all-MiniLM-L6-v2 on ONNX Runtime (fp32 or dynamic int8), exported once into the data dir.

The same model, tokenizer, mean pooling and normalisation as :class:`MiniLMEmbedder`'s
sentence-transformers pipeline; only the transformer runs on ONNX Runtime instead of torch.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from memsvc.embeddings.base import Embedder
from memsvc.embeddings.onnx_export import ensure_onnx_model

__all__ = ["OnnxMiniLMEmbedder"]


class OnnxMiniLMEmbedder(Embedder):
    """The packaged MiniLM through ONNX Runtime; ``int8`` picks the quantized export."""

    def __init__(
        self,
        cache_root: Path,
        model_path: str = "",
        *,
        int8: bool = False,
        batch_size: int = 64,
        threads: int = 0,
        query_threads: int = 1,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import onnxruntime as ort
        except ImportError as exc:  # a client-only or hand-made install
            raise RuntimeError(
                "MEMSVC_EMBEDDER_BACKEND=onnx/onnx-int8 needs ONNX Runtime: "
                "pip install 'memsvc[onnx]', or set MEMSVC_EMBEDDER_BACKEND=torch"
            ) from exc
        from transformers import AutoTokenizer

        from memsvc.embeddings.minilm import default_model_path

        self.model_path = model_path or default_model_path()
        self.batch_size = batch_size
        self.onnx_path, self.exported = ensure_onnx_model(self.model_path, cache_root, int8=int8)
        # The same name as the torch backend: the vectors are the same model's (fp32 agrees to
        # cosine ~1.0, int8 to ~0.99), and a new name would drop every stored vector out of
        # search until the index is rebuilt.
        self.name = model_path or "sentence-transformers/all-MiniLM-L6-v2"
        folder = Path(self.model_path)
        self._max_length = int(
            json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        )
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"{self.model_path}: the ONNX backend implements mean pooling only")
        self._tokenizer: Any = AutoTokenizer.from_pretrained(self.model_path)
        self._counter = copy.deepcopy(self._tokenizer)
        self._count_lock = threading.Lock()
        # A query runs on ``query_threads`` (1: a second gains little at that size), a batch
        # on ``threads`` (0: ONNX Runtime's default, one per physical core). Idle workers sleep
        # instead of spinning: on shared cores a spinning worker takes the core a busy
        # neighbour needs (the same trap torch's OpenMP team fell into).
        self._query_session = self._session(ort, query_threads)
        self._batch_session = (
            self._query_session if threads == query_threads else self._session(ort, threads)
        )
        self.dim = int(self._query_session.get_outputs()[0].shape[-1] or 0) or self._probe_dim()
        # One model thread, as MiniLMEmbedder: calls are serialised and never contend.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memsvc-embed")

    def _session(self, ort: Any, threads: int) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(
            str(self.onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _probe_dim(self) -> int:
        return int(self._run(self._query_session, ["probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._thread.submit(self._encode, list(texts)).result()

    def _encode(self, texts: list[str]) -> np.ndarray:
        session = self._query_session if len(texts) == 1 else self._batch_session
        # Longest first, as sentence-transformers does: batches of similar length pad less.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._run(session, [texts[i] for i in chunk])
        return out

    def _run(self, session: Any, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer(
            texts,
            padding=True,
            truncation="longest_first",
            max_length=self._max_length,
            return_tensors="np",
        )
        mask = encoded["attention_mask"].astype(np.int64)
        feeds = {
            "input_ids": encoded["input_ids"].astype(np.int64),
            "attention_mask": mask,
            "token_type_ids": encoded.get("token_type_ids", np.zeros_like(mask)).astype(np.int64),
        }
        hidden = session.run(["last_hidden_state"], feeds)[0]
        # Mean over real tokens, then unit length (sentence-transformers' Pooling + Normalize).
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled / norms, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return self.count_tokens_many([text])[0]

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._count_lock:
            encoded = self._counter(list(texts), add_special_tokens=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]
