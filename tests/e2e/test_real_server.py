"""A real uvicorn process and one pooled httpx client: errors never cost the connection.

A 500 used to be answered by Starlette's last-resort handler, which re-raises to the server; the
server then closed the keep-alive connection without ``Connection: close`` and the client's next,
unrelated request on it could fail with a reset. A 413 leaves the body unread, so it must say
``Connection: close``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import ServerProcess, free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The API under uvicorn with either HTTP implementation (they differ on connections)."""
    tmp_path = tmp_path_factory.mktemp("server")
    port = free_port()
    env = {
        **os.environ,
        "MEMSVC_DATA_DIR": str(tmp_path / "data"),
        "MEMSVC_EMBEDDER": "hash",
        "MEMSVC_ADMIN_KEY": ADMIN_KEY,
        "MEMSVC_ENVIRONMENT": "test",
        "MEMSVC_MAX_BODY_BYTES": str(BODY_LIMIT),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "tests.e2e.failing_app:create",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http",
        request.param,
    ]
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_ready(server, timeout=90)
        yield server
    finally:
        server.stop()


def _local_port(response: httpx.Response) -> int:
    """The client-side port of the connection that carried ``response``."""
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def _client(server: ServerProcess) -> httpx.Client:
    # One connection: a request after an error must reuse it, or open a new one when told to.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.Client(base_url=server.url, limits=limits, timeout=30)


def test_a_500_keeps_the_connection(server: ServerProcess) -> None:
    with _client(server) as client:
        before = client.get("/healthz")
        failed = client.get("/test/fail")
        assert failed.status_code == 500, failed.text
        assert failed.json() == {
            "error": {
                "code": "internal_error",
                "message": "internal error; the request may be retried",
            }
        }
        assert failed.headers.get("connection", "").lower() != "close"
        for _ in range(3):
            after = client.get("/healthz")
            assert after.status_code == 200
            assert _local_port(after) == _local_port(failed) == _local_port(before)
    assert "ForcedError: forced by the test" in server.log()  # recorded, not swallowed


def test_an_oversized_body_is_refused_and_the_client_goes_on(server: ServerProcess) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    big = b'{"name": "' + b"x" * (2 * BODY_LIMIT) + b'"}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    with _client(server) as client:
        tenants = client.get("/v1/admin/tenants", headers=admin).json()["count"]
        for content in (big, chunks()):
            refused = client.post(
                "/v1/admin/tenants",
                content=content,
                headers={**admin, "content-type": "application/json"},
            )
            assert refused.status_code == 413, refused.text
            error = refused.json()["error"]
            assert error["code"] == "invalid_request" and str(BODY_LIMIT) in error["message"]
            assert refused.headers["connection"].lower() == "close"
            listed = client.get("/v1/admin/tenants", headers=admin)
            assert listed.status_code == 200 and listed.json()["count"] == tenants  # no write
        small = client.post("/v1/admin/tenants", json={"name": "ok"}, headers=admin)
        assert small.status_code == 201, small.text
