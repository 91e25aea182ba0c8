"""``memsvc bench ingest``: chat events/s through ``POST /v1/events`` and ``/v1/context``
latency, at 1 and N concurrent clients on loopback, beside the raw embedder (one run).

1. The raw embedder in this process: sentences/s over the same texts, in request-sized batches.
2. ``memsvc serve`` in a subprocess (embedded default, fresh data dir) is filled with
   ``memories`` long-term memories (batched ``POST /v1/memories``), so context assembly
   searches a realistic store.
3. For each concurrency: events in batches (``batch`` per request, each client its own
   session), then events one per request, then ``/v1/context`` calls (query + session).
   The salience gate is on, as by default: filler is dropped, everything else is embedded once.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memsvc.bench.common import local_key, percentile, raw_embedder, start_server
from memsvc.bench.synthetic import memories, queries
from memsvc.sdk import MemoryClient

__all__ = ["IngestBenchResult", "render", "run_ingest_bench"]

_SPEAKERS = ("Ann", "Bob")
_START = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class ConcurrencyResult:
    clients: int
    events_batched_per_s: float
    events_single_per_s: float
    context_p50_ms: float
    context_p95_ms: float


@dataclass
class IngestBenchResult:
    memories: int
    events: int
    batch: int
    embedder_sentences_per_s: float
    levels: list[ConcurrencyResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The figures at one client at the top level; every level under ``concurrency``."""
        first = self.levels[0]
        return {
            "memories": self.memories,
            "events": self.events,
            "batch": self.batch,
            "embedder_sentences_per_s": self.embedder_sentences_per_s,
            "events_batched_per_s": first.events_batched_per_s,
            "events_single_per_s": first.events_single_per_s,
            "context_p50_ms": first.context_p50_ms,
            "context_p95_ms": first.context_p95_ms,
            "concurrency": {str(level.clients): asdict(level) for level in self.levels},
        }


def _events(texts: list[str], offset: int) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "speaker": _SPEAKERS[(offset + n) % 2],
            "content": text,
            "event_time": _START + timedelta(seconds=offset + n),
        }
        for n, text in enumerate(texts)
    ]


class _Clients:
    """One ``MemoryClient`` per worker thread (httpx clients are not shared across threads)."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self._local = threading.local()
        self._all: list[MemoryClient] = []

    def get(self) -> MemoryClient:
        if not hasattr(self._local, "client"):
            self._local.client = MemoryClient(self.url, self.key, timeout=600)
            self._all.append(self._local.client)
        return self._local.client

    def close(self) -> None:
        for client in self._all:
            client.close()


def _rate(pool: ThreadPoolExecutor, job: Any, chunks: list[Any]) -> float:
    start = time.perf_counter()
    done = sum(pool.map(job, chunks))
    return done / (time.perf_counter() - start)


def _level(
    clients: _Clients, texts: list[str], asked: list[str], n_clients: int, batch: int, tag: str
) -> ConcurrencyResult:
    singles = texts[: max(50, len(texts) // 10)]

    def batched(chunk: tuple[int, list[str]]) -> int:
        offset, part = chunk
        session = f"{tag}-b{offset // batch % n_clients}"
        clients.get().add_events(_events(part, offset), user_id="bench", session_id=session)
        return len(part)

    def single(chunk: tuple[int, list[str]]) -> int:
        offset, part = chunk
        session = f"{tag}-s{offset % n_clients}"
        clients.get().add_events(_events(part, offset), user_id="bench", session_id=session)
        return 1

    latencies: list[float] = []

    def context(n: int) -> int:
        t0 = time.perf_counter()
        clients.get().get_context(
            asked[n % len(asked)], user_id="bench", session_id=f"{tag}-b{n % n_clients}"
        )
        latencies.append((time.perf_counter() - t0) * 1000)
        return 1

    with ThreadPoolExecutor(n_clients) as pool:
        list(pool.map(context, range(n_clients)))  # warm-up: one per thread
        latencies.clear()
        batched_rate = _rate(
            pool, batched, [(i, texts[i : i + batch]) for i in range(0, len(texts), batch)]
        )
        single_rate = _rate(pool, single, [(i, [t]) for i, t in enumerate(singles)])
        list(pool.map(context, range(max(100, 25 * n_clients))))
    return ConcurrencyResult(
        clients=n_clients,
        events_batched_per_s=batched_rate,
        events_single_per_s=single_rate,
        context_p50_ms=percentile(latencies, 0.5),
        context_p95_ms=percentile(latencies, 0.95),
    )


def run_ingest_bench(
    *,
    memories_n: int = 10_000,
    events: int = 2_000,
    batch: int = 64,
    concurrency: tuple[int, ...] = (1, 8),
    port: int = 18766,
    work_dir: Path | None = None,
    console: Console | None = None,
) -> IngestBenchResult:
    """Run the benchmark; see the module docstring for what is measured."""
    console = console or Console()
    users = max(1, memories_n // 1000)
    corpus = memories(memories_n, users)
    texts = [m.text for m in memories(events, 1, seed=11)]
    asked = [q.text for q in queries(200, 1)]
    per_s, _ = raw_embedder(texts[: min(len(texts), 4096)], batch, 10)
    console.print(f"raw embedder: {per_s:.0f} sentences/s (batches of {batch})")
    result = IngestBenchResult(memories_n, events, batch, per_s)

    data_dir = Path(work_dir or tempfile.mkdtemp(prefix="memsvc-bench-")) / "data"
    process, url, log_path = start_server(data_dir, port)
    clients = _Clients(url, local_key(log_path))
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("long-term memories", total=len(corpus))
            # Long-term memories belong to the user the context calls are scoped to.
            for i in range(0, len(corpus), 256):
                chunk = corpus[i : i + 256]
                clients.get().add([{"text": m.text, "user_id": "bench"} for m in chunk])
                progress.advance(task, len(chunk))
        for n_clients in concurrency:
            console.print(f"{n_clients} client(s) ...")
            level = _level(clients, texts, asked, n_clients, batch, tag=f"c{n_clients}")
            result.levels.append(level)
    finally:
        clients.close()
        process.terminate()
        process.wait(timeout=60)
    return result


def render(result: IngestBenchResult, console: Console, json_path: Path | None) -> None:
    """The table, and the JSON file when asked."""
    table = Table(
        title=f"memsvc bench ingest ({result.memories} long-term memories, "
        f"{result.events} events, batches of {result.batch})"
    )
    for column in ("clients", "events/s batched", "% of embedder", "events/s single"):
        table.add_column(column, justify="right")
    table.add_column("context p50 ms", justify="right")
    table.add_column("context p95 ms", justify="right")
    for level in result.levels:
        table.add_row(
            str(level.clients),
            f"{level.events_batched_per_s:.0f}",
            f"{level.events_batched_per_s / result.embedder_sentences_per_s:.0%}",
            f"{level.events_single_per_s:.1f}",
            f"{level.context_p50_ms:.1f}",
            f"{level.context_p95_ms:.1f}",
        )
    console.print(f"raw embedder: {result.embedder_sentences_per_s:.0f} sentences/s")
    console.print(table)
    if json_path is not None:
        json_path.write_text(json.dumps(result.to_json(), indent=2))
        console.print(f"wrote {json_path}")
