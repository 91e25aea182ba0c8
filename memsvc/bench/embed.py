"""``memsvc bench embed``: the embedder backends side by side.

For each backend (torch, onnx, onnx-int8): start-up time (the first start of an ONNX backend
exports into the data directory), single-query latency p50/p95 on one thread and on the
default threads, batch throughput (sentences/s at the batch size) on the default threads and on
one, and the cosine agreement of its vectors with torch's on the same sentences.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from memsvc.bench.common import percentile
from memsvc.embeddings import Embedder, onnx_cache_dir
from memsvc.settings import Settings

__all__ = ["BACKENDS", "render", "run_embed_bench", "sentences"]

BACKENDS = ("torch", "onnx", "onnx-int8")


def sentences(n: int, data: Path | None) -> list[str]:
    """``n`` texts: LoCoMo turns when ``data`` is given, else the synthetic memories."""
    if data is not None:
        from memsvc.bench.locomo_data import load

        turns = [t.text for conv in load(data) for t in conv.turns]
        return (turns * (n // max(1, len(turns)) + 1))[:n]
    from memsvc.bench.synthetic import memories, queries

    half = n // 2
    return [m.text for m in memories(n - half, users=1)] + [q.text for q in queries(half, 1)]


def _load(settings: Settings, backend: str, threads: int) -> tuple[Embedder, float]:
    """The backend with ``threads`` for batches and for queries (0: the library's default).

    The service embeds a query on one thread; the bench times the default threads too.
    """
    start = time.perf_counter()
    built: Embedder
    if backend == "torch":
        from memsvc.embeddings.minilm import MiniLMEmbedder

        built = MiniLMEmbedder(
            batch_size=settings.embed_batch_size, threads=threads, query_threads=threads
        )
    else:
        from memsvc.embeddings.onnx import OnnxMiniLMEmbedder

        built = OnnxMiniLMEmbedder(
            onnx_cache_dir(settings),
            int8=backend == "onnx-int8",
            batch_size=settings.embed_batch_size,
            threads=threads,
            query_threads=threads,
        )
    return built, time.perf_counter() - start


def _query_ms(embedder: Embedder, texts: Sequence[str]) -> list[float]:
    embedder.embed_query(texts[0])  # warm-up
    times = []
    for text in texts:
        t0 = time.perf_counter()
        embedder.embed_query(text)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _batch_per_s(embedder: Embedder, texts: list[str], batch: int) -> tuple[float, np.ndarray]:
    embedder.embed(texts[:batch])  # warm-up
    start = time.perf_counter()
    parts = [embedder.embed(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    return len(texts) / (time.perf_counter() - start), np.concatenate(parts)


def run_embed_bench(
    backends: Sequence[str] = BACKENDS,
    *,
    n: int = 1024,
    queries: int = 200,
    batch: int = 64,
    data: Path | None = None,
    data_dir: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Time each backend on the same texts; cosine against torch's vectors of them."""
    console = console or Console()
    texts = sentences(n, data)
    root = Path(data_dir or tempfile.mkdtemp(prefix="memsvc-bench-embed-"))
    settings = Settings(data_dir=root, embed_batch_size=batch)
    rows: dict[str, dict[str, Any]] = {}
    vectors: dict[str, np.ndarray] = {}
    for backend in backends:
        console.print(f"[bold]{backend}[/]: loading")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        default, first_load_s = _load(settings, backend, 0)  # exports, for an ONNX backend
        single, reload_s = _load(settings, backend, 1)  # reuses that export
        q_default = _query_ms(default, texts[:queries])
        q_single = _query_ms(single, texts[:queries])
        per_s_default, vecs = _batch_per_s(default, texts, batch)
        per_s_single, _ = _batch_per_s(single, texts, batch)
        vectors[backend] = vecs
        rows[backend] = {
            "first_load_s": first_load_s,
            "reload_s": reload_s,
            "query_p50_ms_1thread": statistics.median(q_single),
            "query_p95_ms_1thread": percentile(q_single, 0.95),
            "query_p50_ms_default": statistics.median(q_default),
            "query_p95_ms_default": percentile(q_default, 0.95),
            "batch_per_s_default": per_s_default,
            "batch_per_s_1thread": per_s_single,
        }
        del default, single
    if "torch" in vectors:
        for backend, vecs in vectors.items():
            cosines = np.sum(vecs * vectors["torch"], axis=1)
            rows[backend]["cosine_mean"] = float(cosines.mean())
            rows[backend]["cosine_min"] = float(cosines.min())
    return {"sentences": len(texts), "queries": queries, "batch": batch, "backends": rows}


def render(result: dict[str, Any], console: Console, json_path: Path | None) -> None:
    table = Table(
        title=f"memsvc bench embed ({result['sentences']} sentences, batch {result['batch']}, "
        f"{result['queries']} queries)"
    )
    columns = [
        ("backend", None),
        ("query p50/p95 ms, 1 thread", ("query_p50_ms_1thread", "query_p95_ms_1thread")),
        ("query p50/p95 ms, default", ("query_p50_ms_default", "query_p95_ms_default")),
        ("batch/s default", "batch_per_s_default"),
        ("batch/s 1 thread", "batch_per_s_1thread"),
        ("cos mean/min vs torch", ("cosine_mean", "cosine_min")),
        ("first load s", "first_load_s"),
        ("reload s", "reload_s"),
    ]
    for title, _ in columns:
        table.add_column(title, justify="right")
    for backend, row in result["backends"].items():
        cells = [backend]
        for _, key in columns[1:]:
            if isinstance(key, tuple):
                a, b = (row.get(k) for k in key)
                digits = 4 if key[0].startswith("cosine") else 1
                cells.append("-" if a is None else f"{a:.{digits}f} / {b:.{digits}f}")
            else:
                cells.append(f"{row[key]:.1f}")
        table.add_row(*cells)
    console.print(table)
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2))
