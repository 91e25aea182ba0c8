"""A real memsvc server (``memsvc serve``) on loopback, on SQLite and on PostgreSQL, with two
tenants, for mem0ai's own clients."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest

# mem0ai reports usage to its vendor unless told not to, and keeps a config under MEM0_DIR.
os.environ["MEM0_TELEMETRY"] = "false"
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="mem0-home-"))

from tests.conftest import fresh_pg_database
from tests.e2e.conftest import ServerProcess, TenantOnServer, create_tenant, start_server


@dataclass
class Mem0Server:
    server: ServerProcess
    tenant: TenantOnServer
    other: TenantOnServer

    @property
    def host(self) -> str:
        return f"{self.server.url}/mem0"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def mem0_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mem0Server]:
    tmp: Path = tmp_path_factory.mktemp("mem0")
    postgres = request.param == "postgres"
    with fresh_pg_database("memsvc_mem0") if postgres else nullcontext(None) as pg_url:
        env = {"MEMSVC_DATABASE_URL": pg_url} if pg_url else {}
        server = start_server(tmp / "data", env)
        try:
            yield Mem0Server(server, create_tenant(server.url, "a"), create_tenant(server.url, "b"))
        finally:
            server.stop()
