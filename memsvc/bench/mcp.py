"""``memsvc bench mcp``: what MCP adds to a search, over stdio and over streamable HTTP, against
the REST search on the same store (goal: p50 and p95 within 1.2x of REST).

1. ``memsvc serve`` in a subprocess on a fresh data dir; ``n`` memories batch-added through
   :class:`MemoryClient`, ``n/1000`` users.
2. The same user-scoped queries, one at a time, each on the three paths in turn (the order
   rotating, after a warm-up):
   - REST: ``MemoryClient.search`` (``POST /v1/search``);
   - MCP over HTTP: the ``mcp`` package's ``ClientSession`` over ``streamable_http_client`` to
     the server's ``/mcp``, ``call_tool("search_memories", ...)``;
   - MCP over stdio: ``memsvc mcp`` spawned against the server (remote mode, as a desktop
     agent runs it), the same tool call. Its search goes on to the server over REST, so this
     path is REST plus one stdio round trip and the tool's encoding.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memsvc.bench.common import local_key, percentile, start_server
from memsvc.bench.search import _ingest
from memsvc.bench.synthetic import SyntheticMemory, memories, queries
from memsvc.sdk import MemoryClient

__all__ = ["MCPBenchResult", "render", "run_mcp_bench"]


@dataclass
class MCPBenchResult:
    n: int
    users: int
    queries: int
    embedder: str
    rest_p50_ms: float
    rest_p95_ms: float
    mcp_http_p50_ms: float
    mcp_http_p95_ms: float
    mcp_stdio_p50_ms: float
    mcp_stdio_p95_ms: float

    def ratios(self) -> dict[str, float]:
        return {
            "http_p50": self.mcp_http_p50_ms / self.rest_p50_ms,
            "http_p95": self.mcp_http_p95_ms / self.rest_p95_ms,
            "stdio_p50": self.mcp_stdio_p50_ms / self.rest_p50_ms,
            "stdio_p95": self.mcp_stdio_p95_ms / self.rest_p95_ms,
        }


async def _time_paths(
    url: str, key: str, asked: list[SyntheticMemory]
) -> tuple[list[float], list[float], list[float]]:
    """Each query on the three paths in turn (the order rotating), so a change in the
    machine's load falls on all three alike; returns the ms of REST, MCP HTTP, MCP stdio."""
    import httpx2
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "memsvc", "mcp"],
        env={"MEMSVC_URL": url, "MEMSVC_API_KEY": key},
    )
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=120) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (h_read, h_write),
        ClientSession(h_read, h_write) as over_http,
        stdio_client(params) as (s_read, s_write),
        ClientSession(s_read, s_write) as over_stdio,
    ):
        await over_http.initialize()
        await over_stdio.initialize()
        with MemoryClient(url, key) as client:

            async def rest(q: SyntheticMemory) -> None:
                client.search(q.text, user_id=q.user_id, top_k=10)  # blocking: timed alone

            def tool(session: ClientSession) -> Callable[[SyntheticMemory], Awaitable[None]]:
                async def call(q: SyntheticMemory) -> None:
                    args = {"query": q.text, "user_id": q.user_id, "top_k": 10}
                    result = await session.call_tool("search_memories", args)
                    if result.is_error:
                        raise RuntimeError(f"search_memories failed: {result.content}")

                return call

            paths = [rest, tool(over_http), tool(over_stdio)]
            times: list[list[float]] = [[], [], []]
            for n, q in enumerate([*asked[:10], *asked]):  # the first ten warm up
                for i in (n % 3, (n + 1) % 3, (n + 2) % 3):
                    t0 = time.perf_counter()
                    await paths[i](q)
                    if n >= 10:
                        times[i].append((time.perf_counter() - t0) * 1000)
    return times[0], times[1], times[2]


def run_mcp_bench(
    n: int,
    *,
    n_queries: int = 300,
    embedder: str = "minilm",
    batch: int = 256,
    port: int = 18767,
    work_dir: Path | None = None,
    console: Console | None = None,
) -> MCPBenchResult:
    console = console or Console()
    users = max(1, n // 1000)
    corpus = memories(n, users)
    asked = queries(n_queries, users)
    console.print(f"[bold]bench mcp[/bold]: n={n}, users={users}, embedder={embedder}")
    root = Path(work_dir or tempfile.mkdtemp(prefix="memsvc-bench-mcp-"))
    process, url, log_path = start_server(root / "data", port, {"MEMSVC_EMBEDDER": embedder})
    try:
        key = local_key(log_path)
        _ingest(url, key, corpus, batch, 2, console)
        rest, http, stdio = asyncio.run(_time_paths(url, key, asked))
    finally:
        process.terminate()
        process.wait(timeout=60)
    return MCPBenchResult(
        n=n,
        users=users,
        queries=len(asked),
        embedder=embedder,
        rest_p50_ms=percentile(rest, 0.5),
        rest_p95_ms=percentile(rest, 0.95),
        mcp_http_p50_ms=percentile(http, 0.5),
        mcp_http_p95_ms=percentile(http, 0.95),
        mcp_stdio_p50_ms=percentile(stdio, 0.5),
        mcp_stdio_p95_ms=percentile(stdio, 0.95),
    )


def render(result: MCPBenchResult, console: Console, json_path: Path | None) -> None:
    table = Table(
        title=f"memsvc bench mcp (n={result.n}, {result.queries} searches, {result.embedder})"
    )
    for column in ("path", "p50 ms", "p95 ms", "p50 vs REST", "p95 vs REST"):
        table.add_column(column, justify="left" if column == "path" else "right")
    ratios = result.ratios()
    table.add_row("REST search", f"{result.rest_p50_ms:.2f}", f"{result.rest_p95_ms:.2f}", "", "")
    for name, label in (("http", "MCP, streamable HTTP"), ("stdio", "MCP, stdio")):
        table.add_row(
            label,
            f"{getattr(result, f'mcp_{name}_p50_ms'):.2f}",
            f"{getattr(result, f'mcp_{name}_p95_ms'):.2f}",
            f"{ratios[f'{name}_p50']:.2f}x",
            f"{ratios[f'{name}_p95']:.2f}x",
        )
    console.print(table)
    console.print("goal: MCP within 1.2x of REST")
    if json_path is not None:
        json_path.write_text(json.dumps({**asdict(result), "ratios": ratios}, indent=2))
        console.print(f"wrote {json_path}")
