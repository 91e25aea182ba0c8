"""``memsvc bench consolidate``: consolidation throughput, events/s, through a Celery worker.

1. Chat events (first-person statements, some dated, some contradicting earlier ones) are
   written to ``sessions`` sessions of two tenants, with working memory large and idleness
   long so that nothing is consolidated while writing.
2. ``memsvc worker`` runs in a subprocess over a private Redis (or ``--redis-url``); after
   warm-up jobs (model load), one job per session of tenant A is enqueued and timed from the
   first enqueue to the last job finished.
3. For comparison, tenant B's sessions are consolidated in this process (the embedded path).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from rich.console import Console
from rich.table import Table

from consolidation.dispatch import build_service
from memsvc.schemas import ConsolidateRequest, EventBatch, EventCreate
from memsvc.service import MemoryService, jobs
from memsvc.settings import Settings
from stores.memories import MemoryQuery, count_live

__all__ = ["ConsolidateBenchResult", "render", "run_consolidate_bench"]

_PLACES = "Lisbon Osaka Denver Nairobi Oslo Lima Hanoi Krakow Austin Porto Seoul Cairo".split()
_THINGS = "hiking,painting,the cello,climbing,baking bread,chess,yoga,jazz,sushi,tea".split(",")
_TEMPLATES = [
    "I live in {place} now.",
    "I went {thing} with my sister yesterday and it was great.",
    "I love {thing}, honestly.",
    "My friend Sam moved to {place} last month.",
    "I'm thinking of visiting {place} next year.",
    "We talked for hours. I bought a new bike for the trip to {place}.",
    "ok",
    "What do you think about {thing}?",
]


@dataclass
class ConsolidateBenchResult:
    events: int
    sessions: int
    embedder: str
    concurrency: int
    worker_events_per_s: float
    worker_seconds: float
    in_process_events_per_s: float
    memories_written: int
    cores: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chat(rng: random.Random, n: int, start: datetime) -> list[EventCreate]:
    return [
        EventCreate(
            speaker="Ann",
            content=rng.choice(_TEMPLATES).format(
                place=rng.choice(_PLACES), thing=rng.choice(_THINGS)
            ),
            event_time=start + timedelta(minutes=k),
        )
        for k in range(n)
    ]


def _write(svc: MemoryService, tenant_id: str, events: int, sessions: int) -> list[str]:
    rng = random.Random(7)
    names = [f"s{k:04d}" for k in range(sessions)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    per = max(1, events // sessions)
    for k, name in enumerate(names):
        batch = EventBatch(user_id="u", session_id=name, events=_chat(rng, per, start))
        svc.events.add(tenant_id, batch)
        start += timedelta(days=1 + k % 3)
    return names


def _wait_jobs(svc: MemoryService, tenant_id: str, job_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(job_ids)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} jobs unfinished after {timeout}s")
        for job_id in list(pending):
            if svc.jobs.get(tenant_id, job_id).state in ("succeeded", "failed"):
                pending.discard(job_id)
        time.sleep(0.1)


def run_consolidate_bench(
    events: int,
    *,
    sessions: int,
    embedder: str,
    concurrency: int,
    redis_url: str | None,
    database_url: str | None,
    console: Console,
) -> ConsolidateBenchResult:
    work = Path(tempfile.mkdtemp(prefix="memsvc-bench-consolidate-"))
    redis_proc = None
    if redis_url is None:
        port = _free_port()
        redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        redis_url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            try:
                redis.Redis.from_url(redis_url).ping()
                break
            except redis.RedisError:
                time.sleep(0.05)
    database_url = database_url or f"sqlite:///{work / 'bench.db'}"
    env = {
        **os.environ,
        "MEMSVC_REDIS_URL": redis_url,
        "MEMSVC_DATABASE_URL": database_url,
        "MEMSVC_EMBEDDER": embedder,
        "MEMSVC_SESSION_IDLE_SECONDS": "86400",
        "MEMSVC_WORKING__TOKEN_BUDGET": "10000000",
        "MEMSVC_CONSOLIDATION__SCAN_SECONDS": "3600",
    }
    settings = Settings(
        data_dir=work / "api",
        database_url=database_url,
        redis_url=redis_url,
        embedder=embedder,  # type: ignore[arg-type]
        session_idle_seconds=86400,
        working={"token_budget": 10_000_000},  # type: ignore[arg-type]
        consolidation={"scan_seconds": 3600},  # type: ignore[arg-type]
        index_snapshot_seconds=0,
    )
    worker = None
    svc = build_service(settings)
    try:
        a = svc.tenants.create("worker").id
        b = svc.tenants.create("in-process").id
        warm = svc.tenants.create("warm-up").id
        console.print(f"writing {events} events in {sessions} sessions, twice")
        names_a = _write(svc, a, events, sessions)
        names_b = _write(svc, b, events, sessions)
        _write(svc, warm, concurrency * 2, concurrency)
        log = (work / "worker.log").open("w")
        command = [sys.executable, "-m", "memsvc", "worker", "--concurrency", str(concurrency),
                   "--data-dir", str(work / "worker")]  # fmt: skip
        worker = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        console.print("warming the worker up (model load)")
        warm_jobs = [svc.jobs.consolidate(warm, ConsolidateRequest(session_id=f"s{k:04d}")).id
                     for k in range(concurrency)]  # fmt: skip
        _wait_jobs(svc, warm, warm_jobs, timeout=600)
        started = time.perf_counter()
        queued = [svc.jobs.consolidate(a, ConsolidateRequest(session_id=n)).id for n in names_a]
        _wait_jobs(svc, a, queued, timeout=3600)
        worker_seconds = time.perf_counter() - started
        console.print(f"worker: {worker_seconds:.1f} s; now in this process")
        # The idle worker's torch threads would compete with this process: stop it first.
        worker.terminate()
        worker.wait(timeout=60)
        local = [jobs.create_job(svc.deps, b, "request", {"session_id": n}).id for n in names_b]
        started = time.perf_counter()
        for job_id in local:
            svc.dispatcher.run(job_id)  # the embedded path: the same steps, in this process
        in_process_seconds = time.perf_counter() - started
        with svc.deps.sessions() as session:
            written = count_live(MemoryQuery(tenant_id=a), session=session)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
        svc.close()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    total = (events // sessions) * sessions
    return ConsolidateBenchResult(
        events=total,
        sessions=sessions,
        embedder=embedder,
        concurrency=concurrency,
        worker_events_per_s=total / worker_seconds,
        worker_seconds=worker_seconds,
        in_process_events_per_s=total / in_process_seconds,
        memories_written=written,
        cores=os.cpu_count() or 0,
    )


def render(result: ConsolidateBenchResult, console: Console, json_path: Path | None) -> None:
    table = Table(title="memsvc bench consolidate")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("events (kept and dropped)", str(result.events))
    table.add_row("sessions (one job each)", str(result.sessions))
    table.add_row("embedder", result.embedder)
    table.add_row("worker processes / machine cores", f"{result.concurrency} / {result.cores}")
    table.add_row("through the worker, events/s", f"{result.worker_events_per_s:.1f}")
    table.add_row("  wall time, s", f"{result.worker_seconds:.1f}")
    table.add_row("in this process (embedded), events/s", f"{result.in_process_events_per_s:.1f}")
    table.add_row("long-term memories written (worker tenant)", str(result.memories_written))
    console.print(table)
    if json_path is not None:
        json_path.write_text(json.dumps(asdict(result), indent=2))
