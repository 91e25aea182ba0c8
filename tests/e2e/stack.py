"""The consolidation stack as real processes: a private Redis, a fresh PostgreSQL database,
``memsvc serve`` (uvicorn), ``memsvc worker`` (Celery) and ``memsvc beat``.

Every process is bounded (start timeouts, stop with terminate then kill) and stopped by the
fixture that started it; Redis listens on loopback only and keeps nothing on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.conftest import ADMIN_KEY, fresh_pg_database
from tests.e2e.conftest import free_port


@dataclass
class Proc:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> Proc:
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class RedisServer:
    port: int
    log_path: Path
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
        ]  # fmt: skip
        self.proc = Proc("redis", command, dict(os.environ), self.log_path).start()
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        pytest.fail(f"redis-server did not start:\n{self.proc.log()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()


@pytest.fixture
def private_redis(tmp_path: Path):
    """A redis-server of this test only (so it can be killed and restarted)."""
    server = RedisServer(free_port(), tmp_path / "redis.log")
    server.start()
    yield server
    if server.proc is not None:
        server.proc.stop()


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test only (the stack's scans see only its sessions)."""
    with fresh_pg_database("memsvc_stack") as url:
        yield url


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def memsvc(self, name: str, *args: str) -> Proc:
        data_dir = self.tmp / name
        data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "memsvc", *args, "--data-dir", str(data_dir)]
        proc = Proc(name, command, self.env, self.tmp / f"{name}.log").start()
        self.procs.append(proc)
        return proc

    def worker(self) -> Proc:
        return self.memsvc("worker", "worker", "--pool", "solo", "--concurrency", "1")

    def beat(self) -> Proc:
        return self.memsvc("beat", "beat")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-4000:]}" for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


def stack_env(pg_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "MEMSVC_DATABASE_URL": pg_url,
        "MEMSVC_REDIS_URL": redis_url,
        "MEMSVC_EMBEDDER": "hash",
        "MEMSVC_ADMIN_KEY": ADMIN_KEY,
        "MEMSVC_ENVIRONMENT": "test",
        "MEMSVC_AUTH_CACHE_SECONDS": "0",
        "MEMSVC_SESSION_IDLE_SECONDS": "2",
        "MEMSVC_CONSOLIDATION__SCAN_SECONDS": "1",
        "MEMSVC_CONSOLIDATION__STALE_JOB_SECONDS": "4",
        "MEMSVC_CONSOLIDATION__VISIBILITY_TIMEOUT_SECONDS": "4",
        **overrides,
    }


def wait_for(predicate, *, timeout: float, what: str, logs=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs()}")
