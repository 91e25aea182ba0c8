"""``memsvc bench search --compare-metrics``: what recording metrics costs a search.

One corpus is ingested once; then ``memsvc serve`` is started over it alternately with metrics
on (the default: the request middleware, the search-stage histograms, /metrics) and off
(``MEMSVC_METRICS__ENABLED=false``), ``rounds`` times each, in alternating order so that a
machine's drift falls on both sides, and user-scoped REST searches are timed one at a time.
The figure is the p50 of all searches of each side and their ratio.
"""

from __future__ import annotations

import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memsvc.bench.common import local_key, percentile, start_server
from memsvc.bench.search import _ingest, _time_searches
from memsvc.bench.synthetic import memories, queries
from memsvc.sdk import MemoryClient

__all__ = ["MetricsOverhead", "render_overhead", "run_metrics_overhead"]


@dataclass
class MetricsOverhead:
    n: int
    queries: int
    rounds: int
    on_p50_ms: float
    off_p50_ms: float
    on_p95_ms: float
    off_p95_ms: float
    round_p50s_on: list[float]
    round_p50s_off: list[float]

    @property
    def overhead(self) -> float:
        """p50 with metrics over p50 without, minus one (0.01 = 1% slower)."""
        return self.on_p50_ms / self.off_p50_ms - 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_metrics_overhead(
    n: int,
    *,
    n_queries: int = 300,
    rounds: int = 3,
    port: int = 0,
    console: Console | None = None,
) -> MetricsOverhead:
    console = console or Console()
    port = port or _free_port()  # a fixed port may be another server's on a shared machine
    users = max(1, n // 1000)
    corpus, asked = memories(n, users), queries(n_queries, users)
    data_dir = Path(tempfile.mkdtemp(prefix="memsvc-bench-metrics-")) / "data"
    process, url, log_path = start_server(data_dir, port)
    try:
        _ingest(url, local_key(log_path), corpus, 256, 2, console)
    finally:
        process.terminate()
        process.wait(timeout=60)
    times: dict[bool, list[float]] = {True: [], False: []}
    p50s: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for enabled in (True, False) if r % 2 == 0 else (False, True):
            env = {"MEMSVC_METRICS__ENABLED": "true" if enabled else "false"}
            process, url, log_path = start_server(data_dir, port, env)
            try:
                with MemoryClient(url, local_key(log_path)) as client:
                    took = _time_searches(client.search, asked, scoped=True)
            finally:
                process.terminate()
                process.wait(timeout=60)
            times[enabled] += took
            p50s[enabled].append(percentile(took, 0.5))
            side = "on" if enabled else "off"
            console.print(f"round {r + 1}, metrics {side}: p50 {p50s[enabled][-1]:.2f} ms")
    return MetricsOverhead(
        n=n,
        queries=n_queries,
        rounds=rounds,
        on_p50_ms=percentile(times[True], 0.5),
        off_p50_ms=percentile(times[False], 0.5),
        on_p95_ms=percentile(times[True], 0.95),
        off_p95_ms=percentile(times[False], 0.95),
        round_p50s_on=p50s[True],
        round_p50s_off=p50s[False],
    )


def render_overhead(result: MetricsOverhead, console: Console) -> None:
    table = Table(
        title=f"metrics overhead, REST search (n={result.n}, {result.queries} queries x "
        f"{result.rounds} rounds per side)"
    )
    for column in ("metrics", "p50 ms", "p95 ms", "p50 per round"):
        table.add_column(column)
    for name, p50, p95, rounds in (
        ("on", result.on_p50_ms, result.on_p95_ms, result.round_p50s_on),
        ("off", result.off_p50_ms, result.off_p95_ms, result.round_p50s_off),
    ):
        table.add_row(name, f"{p50:.2f}", f"{p95:.2f}", ", ".join(f"{v:.2f}" for v in rounds))
    console.print(table)
    console.print(f"overhead of metrics on search p50: {result.overhead:+.1%} (budget: 3%)")
