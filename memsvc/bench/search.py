"""``memsvc bench search``: ingest throughput and search latency, REST and embedded, beside the
raw embedder they are bounded by (all measured in one run).

1. The raw embedder in this process: sentences/s in batches, ms for one query.
2. ``memsvc serve`` in a subprocess (embedded default on a fresh data dir): batch-add ``n``
   memories through :class:`MemoryClient` (``clients`` concurrent senders, so the server can
   overlap one batch's SQL with the next one's embedding), then time user-scoped searches over
   REST, one at a time.
3. The server stops and starts again on the same data (a replica restart): time from launch
   to ``/readyz``, its resident memory then (partitions load on demand, so neither grows with
   the dataset), the first search of each of a few users (a cold partition: loaded from SQL
   inside that search), then warm searches of the same users, and the memory after.
4. The server stops; an embedded :class:`Memory` opens the same data dir and is timed likewise.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memsvc.bench.common import local_key, percentile, raw_embedder, rss_bytes, start_server
from memsvc.bench.synthetic import SyntheticMemory, memories, queries
from memsvc.sdk import Memory, MemoryClient
from memsvc.settings import Settings

__all__ = ["SearchBenchResult", "run_search_bench"]


@dataclass
class SearchBenchResult:
    n: int
    users: int
    ingest_per_s: float
    embedder_sentences_per_s: float
    embed_query_ms: float
    rest_search_p50_ms: float
    rest_search_p95_ms: float
    embedded_search_p50_ms: float
    embedded_search_p95_ms: float
    rest_unscoped_p50_ms: float
    rest_unscoped_p95_ms: float
    embedder: str = "minilm"
    memory_budget_bytes: int = 0
    cold_start_s: float = 0.0  # launch to /readyz of a restarted replica
    rss_ready_mb: float = 0.0  # its resident memory then
    cold_search_p50_ms: float = 0.0  # first search of a user (partition loaded in it)
    cold_search_max_ms: float = 0.0
    warm_search_p50_ms: float = 0.0  # the same users again
    warm_search_p95_ms: float = 0.0
    rss_warm_mb: float = 0.0  # after the warm searches
    partitions_loaded: int = 0


def _ingest(
    url: str, key: str, corpus: list[SyntheticMemory], batch: int, clients: int, console: Console
) -> float:
    """Batch-add the corpus from ``clients`` concurrent clients; returns memories/s."""
    chunks = [corpus[i : i + batch] for i in range(0, len(corpus), batch)]
    local = threading.local()

    def send(chunk: list[SyntheticMemory]) -> int:
        if not hasattr(local, "client"):
            local.client = MemoryClient(url, key, timeout=600)
        local.client.add([{"text": m.text, "user_id": m.user_id} for m in chunk])
        return len(chunk)

    with Progress(console=console) as progress, ThreadPoolExecutor(clients) as pool:
        task = progress.add_task("ingest", total=len(corpus))
        start = time.perf_counter()
        for done in pool.map(send, chunks):
            progress.advance(task, done)
        return len(corpus) / (time.perf_counter() - start)


def _time_searches(search, batch: list[SyntheticMemory], scoped: bool) -> list[float]:
    for q in batch[:10]:  # warm-up
        search(q.text, user_id=q.user_id if scoped else None)
    times = []
    for q in batch:
        t0 = time.perf_counter()
        search(q.text, user_id=q.user_id if scoped else None, top_k=10)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _restarted(
    data_dir: Path, port: int, env: dict[str, str], key: str, asked: list[SyntheticMemory]
) -> dict[str, float]:
    """Restart the replica on the same data; cold start, memory, cold and warm searches."""
    began = time.perf_counter()
    process, url, _ = start_server(data_dir, port, env)
    figures: dict[str, float] = {"cold_start_s": time.perf_counter() - began}
    try:
        figures["rss_ready_mb"] = rss_bytes(process.pid) / 2**20
        users = list(dict.fromkeys(q.user_id for q in asked))[:30]
        warm_set = [q for q in asked if q.user_id in users]
        with MemoryClient(url, key, timeout=600) as client:
            cold = []
            for user in users:
                query = next(q for q in asked if q.user_id == user)
                t0 = time.perf_counter()
                client.search(query.text, user_id=user, top_k=10)
                cold.append((time.perf_counter() - t0) * 1000)
            warm = _time_searches(client.search, warm_set, scoped=True)
        figures |= {
            "cold_search_p50_ms": percentile(cold, 0.5),
            "cold_search_max_ms": max(cold),
            "warm_search_p50_ms": percentile(warm, 0.5),
            "warm_search_p95_ms": percentile(warm, 0.95),
            "rss_warm_mb": rss_bytes(process.pid) / 2**20,
            "partitions_loaded": len(users),
        }
    finally:
        process.terminate()
        process.wait(timeout=60)
    return figures


def run_search_bench(
    n: int,
    *,
    users: int | None = None,
    batch: int = 256,
    n_queries: int = 300,
    port: int = 18765,
    clients: int = 2,
    work_dir: Path | None = None,
    console: Console | None = None,
    embedder: str = "minilm",
    memory_budget_bytes: int | None = None,
    metrics: bool = True,
) -> SearchBenchResult:
    console = console or Console()
    users = users or max(1, n // 1000)
    corpus = memories(n, users)
    asked = queries(n_queries, users)
    console.print(
        f"[bold]bench search[/bold]: n={n}, users={users}, batch={batch}, ingest clients={clients}"
        f", metrics {'on' if metrics else 'off'}"
    )

    per_s, query_ms = raw_embedder(
        [m.text for m in corpus[: min(n, 4096)]], batch, 200, embedder_name=embedder
    )
    console.print(f"raw embedder ({embedder}): {per_s:.0f} sentences/s, {query_ms:.2f} ms/query")

    root = Path(work_dir or tempfile.mkdtemp(prefix="memsvc-bench-"))
    data_dir = root / "data"
    env = {"MEMSVC_EMBEDDER": embedder}
    env["MEMSVC_METRICS__ENABLED"] = "true" if metrics else "false"
    if memory_budget_bytes is not None:
        env["MEMSVC_PARTITIONS__MEMORY_BUDGET_BYTES"] = str(memory_budget_bytes)
    budget = memory_budget_bytes
    if budget is None:
        budget = Settings().partitions.memory_budget_bytes
    process, url, log_path = start_server(data_dir, port, env)
    try:
        key = local_key(log_path)
        ingest_per_s = _ingest(url, key, corpus, batch, clients, console)
        with MemoryClient(url, key) as client:
            rest = _time_searches(client.search, asked, scoped=True)
            unscoped = _time_searches(client.search, asked[:100], scoped=False)
    finally:
        process.terminate()
        process.wait(timeout=60)
    restart = _restarted(data_dir, port, env, key, asked)

    settings = Settings(data_dir=data_dir, embedder=embedder, metrics={"enabled": metrics})
    with Memory(settings=settings) as memory:
        embedded = _time_searches(memory.search, asked, scoped=True)

    return SearchBenchResult(
        n=n,
        users=users,
        ingest_per_s=ingest_per_s,
        embedder_sentences_per_s=per_s,
        embed_query_ms=query_ms,
        rest_search_p50_ms=percentile(rest, 0.5),
        rest_search_p95_ms=percentile(rest, 0.95),
        embedded_search_p50_ms=percentile(embedded, 0.5),
        embedded_search_p95_ms=percentile(embedded, 0.95),
        rest_unscoped_p50_ms=percentile(unscoped, 0.5),
        rest_unscoped_p95_ms=percentile(unscoped, 0.95),
        embedder=embedder,
        memory_budget_bytes=budget,
        cold_start_s=restart["cold_start_s"],
        rss_ready_mb=restart["rss_ready_mb"],
        cold_search_p50_ms=restart["cold_search_p50_ms"],
        cold_search_max_ms=restart["cold_search_max_ms"],
        warm_search_p50_ms=restart["warm_search_p50_ms"],
        warm_search_p95_ms=restart["warm_search_p95_ms"],
        rss_warm_mb=restart["rss_warm_mb"],
        partitions_loaded=int(restart["partitions_loaded"]),
    )


def render(result: SearchBenchResult, console: Console, json_path: Path | None) -> None:
    table = Table(title=f"memsvc bench search (n={result.n}, users={result.users})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("vs floor", justify="right")
    floor_ms = result.embed_query_ms
    rows = [
        ("raw embedder, sentences/s (batched)", result.embedder_sentences_per_s, ""),
        ("raw embedder, ms per query", floor_ms, "1.00x"),
        (
            "ingest memories/s (REST, batched)",
            result.ingest_per_s,
            f"{result.ingest_per_s / result.embedder_sentences_per_s:.0%} of embedder",
        ),
        (
            "REST search p50 ms (user-scoped)",
            result.rest_search_p50_ms,
            f"{result.rest_search_p50_ms / floor_ms:.2f}x",
        ),
        (
            "REST search p95 ms (user-scoped)",
            result.rest_search_p95_ms,
            f"{result.rest_search_p95_ms / floor_ms:.2f}x",
        ),
        (
            "embedded search p50 ms",
            result.embedded_search_p50_ms,
            f"{result.embedded_search_p50_ms / floor_ms:.2f}x",
        ),
        (
            "embedded search p95 ms",
            result.embedded_search_p95_ms,
            f"{result.embedded_search_p95_ms / floor_ms:.2f}x",
        ),
        (
            "REST search p50 ms (whole tenant)",
            result.rest_unscoped_p50_ms,
            f"{result.rest_unscoped_p50_ms / floor_ms:.2f}x",
        ),
        (
            "REST search p95 ms (whole tenant)",
            result.rest_unscoped_p95_ms,
            f"{result.rest_unscoped_p95_ms / floor_ms:.2f}x",
        ),
    ]
    rows += [
        ("restarted replica: launch to ready, s", result.cold_start_s, ""),
        ("restarted replica: RSS at ready, MiB", result.rss_ready_mb, ""),
        (
            "first search of a user (cold partition) p50 ms",
            result.cold_search_p50_ms,
            f"{result.cold_search_p50_ms / floor_ms:.2f}x",
        ),
        ("first search of a user (cold partition) max ms", result.cold_search_max_ms, ""),
        (
            "warm search p50 ms (same users)",
            result.warm_search_p50_ms,
            f"{result.warm_search_p50_ms / floor_ms:.2f}x",
        ),
        (
            "warm search p95 ms (same users)",
            result.warm_search_p95_ms,
            f"{result.warm_search_p95_ms / floor_ms:.2f}x",
        ),
        (
            f"RSS after {result.partitions_loaded} partitions loaded, MiB",
            result.rss_warm_mb,
            f"budget {result.memory_budget_bytes / 2**20:.0f} MiB",
        ),
    ]
    for name, value, ratio in rows:
        table.add_row(name, f"{value:.2f}" if value < 100 else f"{value:.0f}", ratio)
    console.print(table)
    if json_path is not None:
        json_path.write_text(json.dumps(asdict(result), indent=2))
        console.print(f"wrote {json_path}")
