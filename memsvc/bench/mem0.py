"""``memsvc bench mem0``: what the mem0-compatible search route adds over ``/v1/search``.

One ``memsvc serve`` (fresh data dir, the hash embedder unless told otherwise) holds ``n``
memories of ``users`` users. The same user-scoped queries are then sent, interleaved one by
one so drift hits both alike, to ``POST /v1/search`` (``filters.user_id``) and to mem0's
``POST /mem0/v3/memories/search/`` (``filters: {"user_id": ...}``), over one keep-alive httpx
connection each; the ratio of the latencies is the mem0 adapter's cost (goal: <= 1.10).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from memsvc.bench.common import local_key, percentile, start_server
from memsvc.bench.synthetic import memories, queries
from memsvc.sdk import MemoryClient

__all__ = ["Mem0BenchResult", "render", "run_mem0_bench"]


@dataclass
class Mem0BenchResult:
    n: int
    users: int
    queries: int
    embedder: str
    native_p50_ms: float
    native_p95_ms: float
    native_mean_ms: float
    mem0_p50_ms: float
    mem0_p95_ms: float
    mem0_mean_ms: float
    p50_ratio: float
    mean_ratio: float
    same_results: float  # share of queries whose mem0 ids equal the native ids, in order


def run_mem0_bench(
    n: int,
    *,
    users: int | None = None,
    n_queries: int = 300,
    embedder: str = "hash",
    port: int = 18767,
    console: Console | None = None,
) -> Mem0BenchResult:
    console = console or Console()
    users = users or max(1, n // 500)
    corpus, asked = memories(n, users), queries(n_queries, users)
    root = Path(tempfile.mkdtemp(prefix="memsvc-bench-mem0-"))
    process, url, log_path = start_server(root / "data", port, {"MEMSVC_EMBEDDER": embedder})
    try:
        key = local_key(log_path)
        with MemoryClient(url, key, timeout=600) as client:
            for i in range(0, n, 256):
                client.add([{"text": m.text, "user_id": m.user_id} for m in corpus[i : i + 256]])
        console.print(f"stored {n} memories of {users} users ({embedder} embedder)")
        headers = {"Authorization": f"Token {key}"}
        native_times: list[float] = []
        mem0_times: list[float] = []
        same = 0
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:

            def native(q: str, user: str) -> list[str]:
                body = {"query": q, "filters": {"user_id": user}, "top_k": 10}
                reply = http.post("/v1/search", json=body)
                reply.raise_for_status()
                return [r["memory"]["id"] for r in reply.json()["data"]]

            def mem0(q: str, user: str) -> list[str]:
                body = {"query": q, "filters": {"user_id": user}, "top_k": 10}
                reply = http.post("/mem0/v3/memories/search/", json=body)
                reply.raise_for_status()
                return [r["id"] for r in reply.json()["results"]]

            for q in asked[:20]:  # warm-up, both paths
                native(q.text, q.user_id)
                mem0(q.text, q.user_id)
            for i, q in enumerate(asked):
                order = (native, mem0) if i % 2 == 0 else (mem0, native)
                ids = {}
                for path in order:
                    t0 = time.perf_counter()
                    ids[path] = path(q.text, q.user_id)
                    elapsed = (time.perf_counter() - t0) * 1000
                    (native_times if path is native else mem0_times).append(elapsed)
                same += ids[native] == ids[mem0]
    finally:
        process.terminate()
        process.wait(timeout=60)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    return Mem0BenchResult(
        n=n,
        users=users,
        queries=len(asked),
        embedder=embedder,
        native_p50_ms=percentile(native_times, 0.5),
        native_p95_ms=percentile(native_times, 0.95),
        native_mean_ms=mean(native_times),
        mem0_p50_ms=percentile(mem0_times, 0.5),
        mem0_p95_ms=percentile(mem0_times, 0.95),
        mem0_mean_ms=mean(mem0_times),
        p50_ratio=percentile(mem0_times, 0.5) / percentile(native_times, 0.5),
        mean_ratio=mean(mem0_times) / mean(native_times),
        same_results=same / len(asked),
    )


def render(result: Mem0BenchResult, console: Console, json_path: Path | None) -> None:
    table = Table(
        title=f"memsvc bench mem0 (n={result.n}, users={result.users}, "
        f"queries={result.queries}, {result.embedder} embedder)"
    )
    for column in ("route", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(column, justify="right" if column != "route" else "left")
    table.add_row(
        "POST /v1/search",
        f"{result.native_p50_ms:.2f}",
        f"{result.native_p95_ms:.2f}",
        f"{result.native_mean_ms:.2f}",
    )
    table.add_row(
        "POST /mem0/v3/memories/search/",
        f"{result.mem0_p50_ms:.2f}",
        f"{result.mem0_p95_ms:.2f}",
        f"{result.mem0_mean_ms:.2f}",
    )
    console.print(table)
    console.print(
        f"mem0 / native: p50 {result.p50_ratio:.3f}x, mean {result.mean_ratio:.3f}x "
        f"(goal <= 1.10); same results for {result.same_results:.0%} of queries"
    )
    if json_path is not None:
        json_path.write_text(json.dumps(asdict(result), indent=2))
        console.print(f"wrote {json_path}")
