"""A PostgreSQL cluster of a test's own, to stop and start under load (Redis: ``stack.py``).

The shared servers of the machine are never touched. A missing binary fails the test loudly.
PostgreSQL refuses to run as root: as root, its commands run as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port


def _pg_bin(name: str) -> str:
    # Debian keeps initdb off the PATH, under the server's versioned folder.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    path = candidates[0] if candidates else shutil.which(name)
    if not path:
        pytest.fail(f"PostgreSQL's {name} is required for this test and was not found")
    return path


@dataclass
class OwnPostgres:
    """A throwaway cluster on a free loopback port (trust auth, user postgres)."""

    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=check, capture_output=True, timeout=120)

    def initdb(self) -> None:
        self._run(
            _pg_bin("initdb"),
            "-D",
            str(self.root / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast", *, check: bool = True) -> None:
        data = str(self.root / "data")
        self._run(_pg_bin("pg_ctl"), "-D", data, "-m", mode, "-w", "stop", check=check)

    @classmethod
    def create(cls) -> OwnPostgres:
        root = Path(tempfile.mkdtemp(prefix="memsvc-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        server = cls(root, free_port())
        server.initdb()
        server.start()
        return server

    def destroy(self) -> None:
        self.stop("immediate", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    """A PostgreSQL cluster of this test only (to stop and start), destroyed after it."""
    server = OwnPostgres.create()
    yield server
    server.destroy()
