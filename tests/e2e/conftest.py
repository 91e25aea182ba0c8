"""Real server processes on loopback ports (``memsvc serve``), stopped at the end of each test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(
    data_dir: Path, env: dict[str, str], *, timeout: float = 180, args: tuple[str, ...] = ()
) -> ServerProcess:
    """``memsvc serve`` in a subprocess; returns once ``/readyz`` answers 200."""
    port = free_port()
    log_path = data_dir.parent / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        "MEMSVC_EMBEDDER": "hash",
        "MEMSVC_ADMIN_KEY": ADMIN_KEY,
        "MEMSVC_ENVIRONMENT": "test",
        "MEMSVC_AUTH_CACHE_SECONDS": "0",
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "memsvc",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *args,
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    wait_ready(server, timeout=timeout)
    return server


def wait_ready(server: ServerProcess, *, timeout: float = 60) -> None:
    """Return once ``/readyz`` answers 200; fail (stopping the server) if it never does."""
    process = server.process
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"server did not become ready in {timeout}s:\n{server.log()}")


@dataclass
class TenantOnServer:
    tenant_id: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


def create_tenant(url: str, name: str) -> TenantOnServer:
    """A tenant and its first key, created through a server's admin routes."""
    created = httpx.post(f"{url}/v1/admin/tenants", json={"name": name}, headers=ADMIN_HEADERS)
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    key = httpx.post(f"{url}/v1/admin/tenants/{tenant_id}/keys", json={}, headers=ADMIN_HEADERS)
    assert key.status_code == 201, key.text
    return TenantOnServer(tenant_id, key.json()["key"], key.json()["id"])


@pytest.fixture
def servers() -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with ``servers(data_dir, env)``; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(data_dir: Path, env: dict[str, str] | None = None) -> ServerProcess:
        server = start_server(data_dir, env or {})
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
