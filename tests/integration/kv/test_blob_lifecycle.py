"""The blob lifecycle: puts and collections of one digest ordered by its registry row's lock,
the sweep that collects what interrupted work left, the registry's migration, and reads that
outlive a concurrent delete."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from memsvc.errors import NotFoundError
from memsvc.service import MemoryService
from memsvc.service.kv_blobs import collect_blob, put_blob, sweep_blobs
from stores import kv as store
from stores.migrate import upgrade_database
from stores.models import KVCacheRow, utcnow
from tests.conftest import TenantKey, fresh_pg_database
from tests.integration.kv.crafted import container


def _store(service: MemoryService, tenant: TenantKey, body: bytes) -> str:
    path = service.deps.blobs.new_tmp_file()
    path.write_bytes(body)
    return service.kv.store_file(tenant.tenant_id, path, kind="cartridge").id


def _row_for(tenant_id: str, digest: str, size: int) -> KVCacheRow:
    return KVCacheRow(
        id=str(uuid.uuid4()), tenant_id=tenant_id, kind="cartridge", model_id="m" * 32,
        model={}, codec={"name": "raw"}, dtype="float32", n_tokens=1, start_position=0,
        bits_per_elem=1.0, origin={"kind": "cartridge"}, metadata_={}, blob_sha256=digest,
        payload_sha256="0" * 64, size_bytes=size, created_at=utcnow(), use_count=0,
    )  # fmt: skip


def test_a_collection_waits_for_the_upload_holding_the_blob(
    service: MemoryService, tenant: TenantKey
) -> None:
    """An upload that has put its file but not committed holds the registry row: a collection
    of the same digest waits for it, then sees its row and keeps the blob."""
    body = container(seed=3)
    digest = hashlib.sha256(body).hexdigest()
    put, release = threading.Event(), threading.Event()

    def upload() -> None:
        path = service.deps.blobs.new_tmp_file()
        path.write_bytes(body)
        with service.deps.sessions.begin() as session:
            store.add_kv(_row_for(tenant.tenant_id, digest, len(body)), [], session=session)
            put_blob(service.deps, path, digest, len(body), session=session)
            put.set()
            release.wait(10)

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert put.wait(10)
    outcome: list[bool] = []
    collector = threading.Thread(target=lambda: outcome.append(collect_blob(service.deps, digest)))
    collector.start()
    time.sleep(0.3)
    assert outcome == [] and collector.is_alive()  # waiting on the upload's lock
    release.set()
    uploader.join(10)
    collector.join(10)
    assert outcome == [False] and service.deps.blobs.exists(digest)


def test_sweep_collects_what_interrupted_work_left(
    service: MemoryService, tenant: TenantKey
) -> None:
    kept = _store(service, tenant, container(seed=1))
    blobs = service.deps.blobs
    orphan = container(seed=2)  # put by an upload that died before committing: no registry row
    orphan_digest = hashlib.sha256(orphan).hexdigest()
    path = blobs.new_tmp_file()
    path.write_bytes(orphan)
    blobs.put_file(path, orphan_digest)
    dropped = _store(service, tenant, container(seed=4))  # row deleted, collection never ran
    dropped_digest = service.kv.get(tenant.tenant_id, dropped).sha256
    with service.deps.sessions.begin() as session:
        store.delete_kv(store.get_kv(tenant.tenant_id, dropped, session=session), session=session)
    stale, fresh = blobs.new_tmp_file(), blobs.new_tmp_file()
    os.utime(stale, (time.time() - 2 * 86_400,) * 2)

    assert service.kv.consolidate()["kv_blobs_collected"] == 2
    assert not blobs.exists(orphan_digest) and not blobs.exists(dropped_digest)
    assert blobs.exists(service.kv.get(tenant.tenant_id, kept).sha256)
    assert not stale.exists() and fresh.exists()
    assert service.kv.load(tenant.tenant_id, kept).manifest.n_tokens == 80
    assert sweep_blobs(service.deps) == 0  # nothing left to do


def test_content_outlives_a_concurrent_delete(service: MemoryService, tenant: TenantKey) -> None:
    body = container(seed=5)
    kv_id = _store(service, tenant, body)
    content = service.kv.open_content(tenant.tenant_id, kv_id)
    service.kv.delete(tenant.tenant_id, kv_id)
    assert not service.deps.blobs.exists(content.kv.sha256)
    assert b"".join(content.chunks()) == body  # opened while the row existed
    with pytest.raises(NotFoundError):
        service.kv.open_content(tenant.tenant_id, kv_id)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (the session's PostgreSQL one is already at head)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with fresh_pg_database("memsvc_mig") as url:
        yield url


def test_migration_registers_the_blobs_rows_point_at(fresh_db_url: str) -> None:
    upgrade_database(fresh_db_url, "0005")
    engine = create_engine(fresh_db_url)
    digest = "ab" * 32
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', :now)"),
                {"now": utcnow()},
            )
            for size in (10, 30):
                connection.execute(
                    text(
                        "INSERT INTO kv_caches (id, tenant_id, kind, model_id, model, codec, "
                        "dtype, n_tokens, start_position, bits_per_elem, origin, metadata, "
                        "blob_sha256, payload_sha256, size_bytes, created_at, use_count) VALUES "
                        "(:id, 't', 'cartridge', 'm', '{}', '{}', 'float32', 1, 0, 1.0, '{}', "
                        "'{}', :d, :d, :s, :now, 0)"
                    ),
                    {"id": str(uuid.uuid4()), "d": digest, "s": size, "now": utcnow()},
                )
        upgrade_database(fresh_db_url)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT sha256, size_bytes FROM kv_blobs")).all()
        assert [tuple(r) for r in rows] == [(digest, 30)]
    finally:
        engine.dispose()
