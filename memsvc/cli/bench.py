"""``memsvc bench ...``: benchmarks that print tables (never timed tests).

Each command imports its benchmark module lazily so ``memsvc --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

bench_app = typer.Typer(help="Benchmarks (see docs/benchmarks.md).", no_args_is_help=True)


@bench_app.command("search")
def search(
    n: Annotated[int, typer.Option(help="Memories to ingest.")] = 10_000,
    users: Annotated[
        int | None, typer.Option(help="Users they belong to (default n/1000).")
    ] = None,
    batch: Annotated[int, typer.Option(help="Memories per add request.")] = 256,
    queries: Annotated[int, typer.Option(help="Searches to time.")] = 300,
    clients: Annotated[int, typer.Option(help="Concurrent ingest clients.")] = 2,
    port: Annotated[int, typer.Option(help="Loopback port of the benchmarked server.")] = 18765,
    embedder: Annotated[
        str, typer.Option(help="minilm (the shipped model) or hash (no model: SQL and index cost).")
    ] = "minilm",
    budget_bytes: Annotated[
        int | None,
        typer.Option(
            help="MEMSVC_PARTITIONS__MEMORY_BUDGET_BYTES of the server (default: its own)."
        ),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.")
    ] = None,
    metrics: Annotated[
        bool, typer.Option(help="Record metrics (off: MEMSVC_METRICS__ENABLED=false).")
    ] = True,
    compare_metrics: Annotated[
        bool,
        typer.Option(help="Instead: search p50 with metrics on vs off, servers alternating."),
    ] = False,
    rounds: Annotated[int, typer.Option(help="--compare-metrics: servers per side.")] = 3,
) -> None:
    """Ingest memories/s and search p50/p95 (REST and embedded) beside the raw embedder; then
    a restarted replica: launch to ready, RSS, first (cold-partition) and warm searches."""
    from rich.console import Console

    console = Console()
    if compare_metrics:
        from memsvc.bench.metrics_overhead import render_overhead, run_metrics_overhead

        overhead = run_metrics_overhead(n, n_queries=queries, rounds=rounds, console=console)
        render_overhead(overhead, console)
        return
    from memsvc.bench.search import render, run_search_bench

    if embedder not in ("minilm", "hash"):
        raise typer.BadParameter("minilm or hash", param_hint="--embedder")
    result = run_search_bench(
        n,
        users=users,
        batch=batch,
        n_queries=queries,
        port=port,
        clients=clients,
        console=console,
        embedder=embedder,
        memory_budget_bytes=budget_bytes,
        metrics=metrics,
    )
    render(result, console, json_path)


@bench_app.command("mcp")
def mcp(
    n: Annotated[int, typer.Option(help="Memories in the store.")] = 10_000,
    queries: Annotated[int, typer.Option(help="Searches to time on each path.")] = 300,
    embedder: Annotated[str, typer.Option(help="minilm (real) or hash.")] = "minilm",
    port: Annotated[int, typer.Option(help="Loopback port of the benchmarked server.")] = 18767,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.")
    ] = None,
) -> None:
    """Search tool-call p50/p95 over MCP (stdio and streamable HTTP) against REST search on
    the same store (goal: within 1.2x)."""
    from rich.console import Console

    from memsvc.bench.mcp import render, run_mcp_bench

    console = Console()
    result = run_mcp_bench(n, n_queries=queries, embedder=embedder, port=port, console=console)
    render(result, console, json_path)


@bench_app.command("ingest")
def ingest(
    memories: Annotated[int, typer.Option(help="Long-term memories stored first.")] = 10_000,
    events: Annotated[int, typer.Option(help="Events sent batched, per concurrency.")] = 2_000,
    batch: Annotated[int, typer.Option(help="Events per batched request.")] = 64,
    concurrency: Annotated[
        list[int] | None, typer.Option(help="Concurrent clients (repeat; default 1 and 8).")
    ] = None,
    port: Annotated[int, typer.Option(help="Loopback port of the benchmarked server.")] = 18766,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.")
    ] = None,
) -> None:
    """Events/s through POST /v1/events (batched, single) and /v1/context p50/p95 beside the
    raw embedder, at 1 and 8 clients."""
    from rich.console import Console

    from memsvc.bench.ingest import render, run_ingest_bench

    console = Console()
    result = run_ingest_bench(
        memories_n=memories,
        events=events,
        batch=batch,
        concurrency=tuple(concurrency or (1, 8)),
        port=port,
        console=console,
    )
    render(result, console, json_path)


@bench_app.command("locomo")
def locomo(
    data: Annotated[Path, typer.Option("--data", help="A LoCoMo-schema JSON file.", exists=True)],
    dump: Annotated[Path, typer.Option("--dump", help="Per-question JSONL dump.")],
    json_path: Annotated[Path | None, typer.Option("--json", help="Metrics JSON.")] = None,
    url: Annotated[str | None, typer.Option(help="A running server (default: embedded).")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="MEMSVC_API_KEY")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N conversations.")] = None,
    work_dir: Annotated[
        Path | None, typer.Option(help="Embedded data directory (default: a fresh temp dir).")
    ] = None,
    reuse: Annotated[
        bool, typer.Option(help="Skip ingest: ask against an earlier run's --work-dir or --url.")
    ] = False,
    preset: Annotated[
        str, typer.Option(help="Retrieval preset (memsvc.retrieval.presets) of an embedded run.")
    ] = "default",
    embedder_backend: Annotated[
        str | None,
        typer.Option(
            help="torch, onnx or onnx-int8 for an embedded run (default: the setting, "
            "MEMSVC_EMBEDDER_BACKEND)."
        ),
    ] = None,
) -> None:
    """LoCoMo retrieval quality: ev@10, ev@250w, ans@1k per category (BENCHMARKS.md s.1)."""
    from rich.console import Console

    from memsvc.bench.locomo import render, run_locomo

    console = Console()
    metrics = run_locomo(
        data,
        dump_path=dump,
        url=url,
        api_key=api_key,
        limit=limit,
        work_dir=work_dir,
        reuse=reuse,
        preset=preset,
        embedder_backend=embedder_backend,
        console=console,
    )
    render(metrics, console, json_path)


@bench_app.command("embed")
def embed(
    backend: Annotated[
        list[str] | None,
        typer.Option(help="torch, onnx, onnx-int8 (repeat; default all three)."),
    ] = None,
    n: Annotated[int, typer.Option(help="Sentences embedded in batches.")] = 1024,
    queries: Annotated[int, typer.Option(help="Single queries timed.")] = 200,
    batch: Annotated[int, typer.Option(help="Sentences per batch.")] = 64,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="LoCoMo-schema JSON: its turns (default: synthetic).", exists=True
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where the ONNX exports go (default: a fresh temp dir, so exported)."),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.")
    ] = None,
) -> None:
    """The embedder backends side by side: query latency, batch throughput, agreement with
    torch's vectors, start-up time."""
    from rich.console import Console

    from memsvc.bench.embed import BACKENDS, render, run_embed_bench

    console = Console()
    result = run_embed_bench(
        tuple(backend or BACKENDS),
        n=n,
        queries=queries,
        batch=batch,
        data=data,
        data_dir=data_dir,
        console=console,
    )
    render(result, console, json_path)


@bench_app.command("kv")
def kv(
    data: Annotated[Path, typer.Option(help="LoCoMo json (the conversation to render).")],
    sample: Annotated[str, typer.Option(help="Conversation sample_id.")] = "conv-26",
    only: Annotated[
        list[str] | None, typer.Option(help="Run only configs whose name contains this.")
    ] = None,
    reps: Annotated[int, typer.Option(help="Timed passes per figure (median).")] = 5,
    threads: Annotated[
        int,
        typer.Option(help="torch and numba threads (1: OpenMP barriers stall on shared cores)."),
    ] = 1,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the rows here.")] = None,
) -> None:
    """KV-cache quantization on SmolLM2-135M: KL, top-1, bits/elem, GB/s vs clone, peers."""
    from rich.console import Console

    from memsvc.bench.kv import BenchUnavailable, render, run_kv_bench

    console = Console()
    console = console if console.is_terminal else Console(width=160)  # the table is wide
    try:
        rows = run_kv_bench(
            data, sample_id=sample, only=only or (), reps=reps, threads=threads, console=console
        )
    except BenchUnavailable as exc:  # a missing model or peer package: say which, no traceback
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    render(rows, console, json_path)


@bench_app.command("resume")
def resume(
    data: Annotated[Path, typer.Option(help="LoCoMo json (the conversation to render).")],
    sample: Annotated[str, typer.Option(help="Conversation sample_id.")] = "conv-26",
    only: Annotated[
        list[str] | None, typer.Option(help="Run only settings whose name contains this.")
    ] = None,
    reps: Annotated[int, typer.Option(help="Timed resumes and prefills (median).")] = 3,
    threads: Annotated[
        int, typer.Option(help="torch and numba threads (1: OpenMP stalls on shared cores).")
    ] = 1,
    port: Annotated[int, typer.Option(help="Loopback port of the memsvc server.")] = 18766,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the rows here.")] = None,
) -> None:
    """Time to first token resuming from memsvc vs re-prefill (SmolLM2-135M, 2,048 tokens)."""
    from rich.console import Console

    from memsvc.bench.resume import render, run_resume_bench

    console = Console()
    console = console if console.is_terminal else Console(width=140)
    rows = run_resume_bench(
        data, sample_id=sample, only=tuple(only or ()), reps=reps, threads=threads, port=port,
        console=console,
    )  # fmt: skip
    render(rows, console, json_path)


@bench_app.command("cartridge")
def cartridge(
    data: Annotated[Path, typer.Option(help="LoCoMo json (the conversation to render).")],
    sample: Annotated[str, typer.Option(help="Conversation sample_id.")] = "conv-26",
    corpus_tokens: Annotated[int, typer.Option(help="Context tokens of the corpus.")] = 4096,
    tokens: Annotated[int, typer.Option(help="Cartridge positions P.")] = 256,
    samples: Annotated[int, typer.Option(help="Self-study conversations.")] = 48,
    chunk_tokens: Annotated[int, typer.Option(help="Corpus tokens per teacher chunk.")] = 384,
    reply_tokens: Annotated[int, typer.Option(help="Longest self-study answer.")] = 48,
    steps: Annotated[int, typer.Option(help="Training steps (one sample each).")] = 240,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-2,
    seed: Annotated[int, typer.Option(help="Seed of data and order.")] = 0,
    work_dir: Annotated[
        Path | None, typer.Option(help="Cache self-study data and checkpoints here.")
    ] = None,
    threads: Annotated[
        int, typer.Option(help="torch threads (1: OpenMP barriers stall on shared cores).")
    ] = 1,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.")
    ] = None,
) -> None:
    """Trained KV cartridge vs ICL vs truncated context: answer NLL and KV bytes (SmolLM2)."""
    from rich.console import Console

    from kv_cartridges.training import SelfStudyConfig, TrainConfig
    from memsvc.bench.cartridge import render, run_cartridge_bench

    console = Console()
    console = console if console.is_terminal else Console(width=150)  # the table is wide
    result = run_cartridge_bench(
        data,
        sample_id=sample,
        corpus_tokens=corpus_tokens,
        tokens=tokens,
        selfstudy=SelfStudyConfig(
            samples=samples, chunk_tokens=chunk_tokens, reply_tokens=reply_tokens, seed=seed
        ),
        train=TrainConfig(steps=steps, lr=lr, seed=seed),
        work_dir=work_dir,
        threads=threads or None,
        console=console,
    )
    render(result, console, json_path)


@bench_app.command("mem0")
def mem0(
    n: Annotated[int, typer.Option(help="Memories to store.")] = 2_000,
    users: Annotated[int | None, typer.Option(help="Users (default n/500).")] = None,
    queries: Annotated[int, typer.Option(help="Queries sent to each route.")] = 300,
    embedder: Annotated[str, typer.Option(help="hash (default) or minilm.")] = "hash",
    port: Annotated[int, typer.Option(help="Loopback port of the benchmarked server.")] = 18767,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.")
    ] = None,
) -> None:
    """Search latency of the mem0-compatible route against POST /v1/search, same store and
    queries (goal: the mem0 path adds <= 10%)."""
    from rich.console import Console

    from memsvc.bench.mem0 import render, run_mem0_bench

    console = Console()
    result = run_mem0_bench(
        n, users=users, n_queries=queries, embedder=embedder, port=port, console=console
    )
    render(result, console, json_path)


@bench_app.command("export")
def export(
    n: Annotated[int, typer.Option(help="Memories in the exported tenant.")] = 100_000,
    embedder: Annotated[str, typer.Option(help="hash (default) or minilm.")] = "hash",
    database_url: Annotated[
        str, typer.Option(help="Source database (default: a temporary SQLite file).")
    ] = "",
    target_database_url: Annotated[
        str, typer.Option(help="Target database (default: a temporary SQLite file).")
    ] = "",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the figures here.")
    ] = None,
) -> None:
    """Export and import memories/s, archive bytes per memory, peak RSS of each."""
    from rich.console import Console

    from memsvc.bench.export import render, run_export_bench

    console = Console()
    result = run_export_bench(
        n,
        embedder=embedder,
        database_url=database_url,
        target_database_url=target_database_url,
        console=console,
    )
    render(result, console, json_path)
