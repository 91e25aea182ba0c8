"""Blobs are shared by content hash across rows and tenants: a delete's collection of unused
blobs racing an upload of the same bytes must never remove the upload's content.

Each round: tenant B stores the bytes, then B deletes its copy while tenant A uploads the
same bytes; A's content must then be readable. The critical sections are at the end of both
calls (the upload's commit, the delete's collection of the blob), so the two are started such
that they would end together, give or take a few milliseconds swept over the rounds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from memsvc.service import MemoryService
from stores.blobs import LocalBlobStore
from tests.conftest import ADMIN_KEY, new_tenant
from tests.e2e.conftest import ServerProcess, start_server
from tests.races import ROUNDS, container_bytes, median_seconds, offsets, race

OCTET = {"Content-Type": "application/octet-stream"}


def _blob_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("??/*") if p.is_file())


class RemoteLikeBlobStore(LocalBlobStore):
    """The local store with an object store's round trips: each request (exists, put, delete)
    takes ``latency`` seconds and acts in the middle of it, as an S3 call would."""

    def __init__(self, root: Path, latency: float) -> None:
        super().__init__(root)
        self.latency = latency

    def _request(self, call: Callable[[], object]) -> object:
        time.sleep(self.latency / 2)
        try:
            return call()
        finally:
            time.sleep(self.latency / 2)

    def exists(self, digest: str) -> bool:
        return bool(self._request(lambda: super(RemoteLikeBlobStore, self).exists(digest)))

    def put_file(self, path: Path, digest: str) -> None:
        if self.exists(digest):  # HEAD, then PUT only when absent
            Path(path).unlink(missing_ok=True)
            return
        self._request(lambda: super(RemoteLikeBlobStore, self).put_file(path, digest))

    def delete(self, digest: str) -> None:
        self._request(lambda: super(RemoteLikeBlobStore, self).delete(digest))


@pytest.fixture
def fine_switching() -> Iterator[None]:
    """Threads handed the interpreter every 0.1 ms (default 5 ms), so they interleave about as
    finely as processes would."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(before)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("latency", [0.0, 0.003], ids=["local", "remote-like"])
def test_upload_delete_race_in_process(
    service: MemoryService, latency: float, fine_switching: None
) -> None:
    if latency:
        root = service.deps.blobs.root  # type: ignore[attr-defined]
        service.deps.blobs = RemoteLikeBlobStore(root, latency)
    a, b = new_tenant(service, "a"), new_tenant(service, "b")
    body = container_bytes()

    def store(tenant_id: str) -> str:
        path = service.deps.blobs.new_tmp_file()
        path.write_bytes(body)
        return service.kv.store_file(tenant_id, path, kind="cartridge").id

    ids = []
    upload_s = median_seconds(lambda: ids.append(store(b.tenant_id)))
    delete_s = median_seconds(lambda: service.kv.delete(b.tenant_id, ids.pop()))
    lost = []
    for n, offset in enumerate(offsets(upload_s, delete_s, 0.004 + 4 * latency)):
        kv_b = store(b.tenant_id)
        kv_a = race(
            lambda: store(a.tenant_id),
            lambda kv_b=kv_b: service.kv.delete(b.tenant_id, kv_b),
            offset,
        )
        try:
            assert service.kv.load(a.tenant_id, kv_a).manifest.n_tokens == 64
        except FileNotFoundError:
            lost.append(n)
        service.kv.delete(a.tenant_id, kv_a)
    assert lost == [], f"content lost in rounds {lost} of {ROUNDS}"
    for kv in service.kv.list(b.tenant_id).data:
        service.kv.delete(b.tenant_id, kv.id)
    assert _blob_files(service.deps.blobs.root) == []  # type: ignore[attr-defined]


def _tenant_key(url: str, name: str) -> str:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    created = httpx.post(f"{url}/v1/admin/tenants", json={"name": name}, headers=admin)
    assert created.status_code == 201, created.text
    key = httpx.post(f"{url}/v1/admin/tenants/{created.json()['id']}/keys", json={}, headers=admin)
    return key.json()["key"]


@pytest.fixture
def two_servers(pg_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two ``memsvc serve`` processes over one PostgreSQL and one blob directory."""
    env = {"MEMSVC_DATABASE_URL": pg_url, "MEMSVC_KV__BLOB_DIR": str(tmp_path / "blobs")}
    started: list[ServerProcess] = []
    try:
        for name in ("one", "two"):
            started.append(start_server(tmp_path / name, env))
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def test_upload_delete_race_two_processes_postgres(two_servers, tmp_path: Path) -> None:
    one, two = two_servers
    key_a, key_b = _tenant_key(one.url, "race-a"), _tenant_key(two.url, "race-b")
    body = container_bytes(seed=1)
    with (
        httpx.Client(base_url=one.url, timeout=30) as c1,
        httpx.Client(base_url=two.url, timeout=30) as c2,
    ):
        a = {"Authorization": f"Bearer {key_a}"}
        b = {"Authorization": f"Bearer {key_b}"}

        def push(client: httpx.Client, headers: dict[str, str]) -> str:
            made = client.post("/v1/cartridges", content=body, headers=headers | OCTET)
            assert made.status_code == 201, made.text
            return made.json()["id"]

        ids = []
        upload_s = median_seconds(lambda: ids.append(push(c2, b)))
        delete_s = median_seconds(lambda: c2.delete(f"/v1/kv/{ids.pop()}", headers=b))
        lost = []
        for n, offset in enumerate(offsets(upload_s, delete_s)):
            kv_b = push(c2, b)
            kv_a = race(
                lambda: push(c1, a),
                lambda kv_b=kv_b: c2.delete(f"/v1/kv/{kv_b}", headers=b).raise_for_status(),
                offset,
            )
            got = c2.get(f"/v1/kv/{kv_a}/content", headers=a)
            if got.status_code != 200 or got.content != body:
                lost.append((n, got.status_code))
            assert c1.delete(f"/v1/kv/{kv_a}", headers=a).status_code == 204
        assert lost == [], f"content lost in rounds {lost} of {ROUNDS}"
        for kv in c2.get("/v1/kv", headers=b).json()["data"]:
            c2.delete(f"/v1/kv/{kv['id']}", headers=b).raise_for_status()
    assert _blob_files(tmp_path / "blobs") == []
