"""``memsvc bench search --compare-metrics``: what recording metrics costs a search.

One corpus is ingested once and copied; two ``memsvc serve`` run side by side over the
copies, one with metrics on (the default: the request middleware, the search-stage
histograms, /metrics), one off (``MEMSVC_METRICS__ENABLED=false``). Each user-scoped query is
sent to both, one at a time, in alternating order, ``rounds`` times over the query set, so a
shared machine's changing load falls on both sides alike. The figure is the p50 of all
searches of each side and their ratio.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memsvc.bench.common import local_key, percentile, start_server
from memsvc.bench.search import _ingest
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
    console: Console | None = None,
) -> MetricsOverhead:
    console = console or Console()
    users = max(1, n // 1000)
    corpus, asked = memories(n, users), queries(n_queries, users)
    root = Path(tempfile.mkdtemp(prefix="memsvc-bench-metrics-"))
    (root / "on").mkdir()
    process, url, log_path = start_server(root / "on" / "data", _free_port())
    try:
        _ingest(url, local_key(log_path), corpus, 256, 2, console)
    finally:
        process.terminate()
        process.wait(timeout=60)
    shutil.copytree(root / "on", root / "off")  # the same corpus, a server each
    servers = {}
    try:
        for enabled in (True, False):
            side = "on" if enabled else "off"
            env = {"MEMSVC_METRICS__ENABLED": "true" if enabled else "false"}
            process, url, log_path = start_server(root / side / "data", _free_port(), env)
            servers[enabled] = (process, MemoryClient(url, local_key(log_path)))
        times: dict[bool, list[float]] = {True: [], False: []}
        p50s: dict[bool, list[float]] = {True: [], False: []}
        for enabled in (True, False):  # warm-up
            for q in asked[:10]:
                servers[enabled][1].search(q.text, user_id=q.user_id)
        for r in range(rounds):
            this_round: dict[bool, list[float]] = {True: [], False: []}
            for i, q in enumerate(asked):
                # Paired and alternating: the machine's load at this moment falls on both.
                for enabled in (True, False) if (i + r) % 2 == 0 else (False, True):
                    t0 = time.perf_counter()
                    servers[enabled][1].search(q.text, user_id=q.user_id, top_k=10)
                    this_round[enabled].append((time.perf_counter() - t0) * 1000)
            for enabled in (True, False):
                times[enabled] += this_round[enabled]
                p50s[enabled].append(percentile(this_round[enabled], 0.5))
            console.print(
                f"round {r + 1}: p50 metrics on {p50s[True][-1]:.2f} ms, "
                f"off {p50s[False][-1]:.2f} ms"
            )
    finally:
        for process, client in servers.values():
            client.close()
            process.terminate()
            process.wait(timeout=60)
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
