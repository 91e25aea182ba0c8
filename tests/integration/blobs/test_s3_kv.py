"""KV memory with its blobs in a real S3 server (SeaweedFS): the REST API end to end, the
upload-versus-delete race of the same bytes (the registry's locks, unchanged, keep every
upload's content), two services over one database and one bucket, and the sweep."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from consolidation.dispatch import build_service
from kv_cartridges.quant import QuantSpec
from memsvc.service import MemoryService
from memsvc.service.kv_blobs import sweep_blobs
from memsvc.service.kv_lifecycle import reencode_kv
from stores.s3_blobs import S3BlobStore
from tests.conftest import fresh_pg_database, new_tenant
from tests.integration.blobs.conftest import s3_settings
from tests.races import ROUNDS, container_bytes, median_seconds, race
from tests.seaweed import S3Server

OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def s3_service(
    seaweedfs: S3Server, bucket: str, tmp_path: Path, db_url: str
) -> Iterator[MemoryService]:
    service = build_service(s3_settings(tmp_path / "data", db_url, seaweedfs, bucket))
    assert isinstance(service.deps.blobs, S3BlobStore)
    yield service
    service.close()


def test_kv_api_end_to_end_on_s3(s3_service: MemoryService, seaweedfs: S3Server, bucket: str):
    tenant = new_tenant(s3_service, "s3")
    body = container_bytes()
    with TestClient(create_app(s3_service.settings, service=s3_service)) as client:
        made = client.post("/v1/cartridges", content=body, headers=tenant.headers | OCTET)
        assert made.status_code == 201, made.text
        kv = made.json()
        assert seaweedfs.keys(bucket) == [f"kv/{kv['sha256'][:2]}/{kv['sha256']}"]
        got = client.get(f"/v1/kv/{kv['id']}/content", headers=tenant.headers)
        assert got.status_code == 200 and got.content == body
        loaded = s3_service.kv.load(tenant.tenant_id, kv["id"])  # spooled, then verified
        assert loaded.manifest.n_tokens == 64
        assert client.delete(f"/v1/kv/{kv['id']}", headers=tenant.headers).status_code == 204
        gone = client.get(f"/v1/kv/{kv['id']}/content", headers=tenant.headers)
        assert gone.status_code == 404
    assert seaweedfs.keys(bucket) == []  # the blob left the bucket with its last row


def test_reencode_and_sweep_on_s3(s3_service: MemoryService, seaweedfs: S3Server, bucket: str):
    tenant = new_tenant(s3_service, "s3")
    path = s3_service.deps.blobs.new_tmp_file()
    path.write_bytes(container_bytes(seed=3))
    kv = s3_service.kv.store_file(tenant.tenant_id, path, kind="cartridge")
    spec = QuantSpec(k_bits=4, v_bits=4)
    assert reencode_kv(s3_service.deps, kv.id, tenant.tenant_id, spec)  # read from S3
    now = s3_service.kv.get(tenant.tenant_id, kv.id)
    assert now.sha256 != kv.sha256 and now.codec["name"] == "kvquant"
    assert seaweedfs.keys(bucket) == [f"kv/{now.sha256[:2]}/{now.sha256}"]  # old one gone
    # an object no row points at (an upload that died before its commit) is swept
    orphan = "cd" * 32
    seaweedfs.client().put_object(Bucket=bucket, Key=f"kv/cd/{orphan}", Body=b"orphan")
    assert sweep_blobs(s3_service.deps) == 1
    assert seaweedfs.keys(bucket) == [f"kv/{now.sha256[:2]}/{now.sha256}"]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_upload_delete_race_on_s3(s3_service: MemoryService, seaweedfs: S3Server, bucket: str):
    """Tenant B stores the bytes, then deletes them while tenant A uploads the same bytes,
    the two calls timed to end together give or take 10 ms: A's content is never lost."""
    service = s3_service
    a, b = new_tenant(service, "a"), new_tenant(service, "b")
    body = container_bytes(seed=1)

    def store(tenant_id: str) -> str:
        path = service.deps.blobs.new_tmp_file()
        path.write_bytes(body)
        return service.kv.store_file(tenant_id, path, kind="cartridge").id

    ids: list[str] = []
    upload_s = median_seconds(lambda: ids.append(store(b.tenant_id)))
    delete_s = median_seconds(lambda: service.kv.delete(b.tenant_id, ids.pop()))
    lost = []
    for n in range(ROUNDS):
        offset = upload_s - delete_s + (n % 11 - 5) / 5 * 0.010
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
    assert seaweedfs.keys(bucket) == []


def test_two_services_share_one_bucket(seaweedfs: S3Server, bucket: str, tmp_path: Path):
    """Two services (two replicas) over one PostgreSQL database and one bucket, each with its
    own data directory: a cache stored through one is served, re-encoded and deleted
    through the other."""
    with fresh_pg_database("memsvc_s3") as url:
        one = build_service(s3_settings(tmp_path / "one", url, seaweedfs, bucket))
        two = build_service(s3_settings(tmp_path / "two", url, seaweedfs, bucket))
        try:
            tenant = new_tenant(one, "shared")
            body = container_bytes(seed=2)
            with (
                TestClient(create_app(one.settings, service=one)) as c1,
                TestClient(create_app(two.settings, service=two)) as c2,
            ):
                made = c1.post("/v1/cartridges", content=body, headers=tenant.headers | OCTET)
                assert made.status_code == 201, made.text
                kv_id = made.json()["id"]
                got = c2.get(f"/v1/kv/{kv_id}/content", headers=tenant.headers)
                assert got.status_code == 200 and got.content == body
                # the other replica's worker-side work sees it too
                assert reencode_kv(two.deps, kv_id, tenant.tenant_id, QuantSpec())
                again = c1.get(f"/v1/kv/{kv_id}/content", headers=tenant.headers)
                assert again.status_code == 200 and again.content != body
                assert c2.delete(f"/v1/kv/{kv_id}", headers=tenant.headers).status_code == 204
                assert c1.get(f"/v1/kv/{kv_id}", headers=tenant.headers).status_code == 404
            assert seaweedfs.keys(bucket) == []
        finally:
            one.close()
            two.close()
