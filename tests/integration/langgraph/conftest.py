"""``MemsvcStore`` over each client it can be built from: the embedded ``Memory``, and a real
``memsvc serve`` on loopback through ``MemoryClient`` and ``AsyncMemoryClient``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memsvc.sdk import Memory, MemoryClient
from memsvc.settings import Settings
from tests.e2e.conftest import ServerProcess, TenantOnServer, create_tenant, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    started = start_server(tmp_path_factory.mktemp("langgraph") / "data", {})
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def tenant(server: ServerProcess) -> TenantOnServer:
    return create_tenant(server.url, "langgraph")


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    with Memory(settings=Settings(data_dir=tmp_path / "data", embedder="hash")) as embedded:
        yield embedded


@pytest.fixture(params=["embedded", "rest"])
def sync_client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Memory | MemoryClient]:
    """A fresh store's client: an embedded ``Memory``, or a new tenant on the server."""
    if request.param == "embedded":
        with Memory(settings=Settings(data_dir=tmp_path / "data", embedder="hash")) as embedded:
            yield embedded
        return
    server: ServerProcess = request.getfixturevalue("server")
    tenant = create_tenant(server.url, f"lg-{tmp_path.name}")
    with MemoryClient(server.url, tenant.key) as client:
        yield client
