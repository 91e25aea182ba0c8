"""``POST /v1/exports``: a job whose archive is downloadable over REST and through the SDK;
the archive imports elsewhere; a purge deletes the archives that may hold the purged user."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc import Memory
from memsvc.schemas import MemoryFilter
from memsvc.service import MemoryService
from tests.conftest import TenantKey, make_settings, new_tenant


def _finished(client: TestClient, tenant: TenantKey, export_id: str) -> dict:
    for _ in range(600):  # the job runs on the service's background runtime
        job = client.get(f"/v1/exports/{export_id}", headers=tenant.headers).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"export {export_id} did not finish: {job}")


def test_an_export_job_serves_an_archive_that_imports_elsewhere(
    service: MemoryService, client: TestClient, tenant: TenantKey, tmp_path: Path
) -> None:
    for text, user in [("I like tea.", "u"), ("I live in Oslo.", "u"), ("Other user.", "v")]:
        client.post("/v1/memories", json={"text": text, "user_id": user}, headers=tenant.headers)
    started = client.post("/v1/exports", json={"user_id": "u"}, headers=tenant.headers)
    assert started.status_code == 202, started.text
    job = _finished(client, tenant, started.json()["id"])
    assert job["state"] == "succeeded" and job["kind"] == "export"
    assert job["counts"]["memories"] == 2 and job["scope"]["user_id"] == "u"
    content = client.get(f"/v1/exports/{job['id']}/content", headers=tenant.headers)
    assert content.status_code == 200 and content.headers["content-type"] == "application/zip"
    assert int(content.headers["content-length"]) == job["scope"]["size_bytes"]
    archive = tmp_path / "u.zip"
    archive.write_bytes(content.content)

    with Memory(settings=make_settings(tmp_path / "other")) as other:
        other.service.tenants.create("copy", tenant.tenant_id)
        report = other.service.scopes.import_(tenant.tenant_id, archive)
        assert report.inserted["memories"] == 2 and report.conflicts == []
        texts = {m.text for m in other.service.memories.list(
            tenant.tenant_id, MemoryFilter(user_id="u"), limit=10).data}  # fmt: skip
        assert texts == {"I like tea.", "I live in Oslo."}

    # another tenant sees no such export
    assert (
        client.get(f"/v1/exports/{job['id']}", headers=_other(service).headers).status_code == 404
    )

    # a purge of the user deletes the archive that holds it
    purged = client.delete("/v1/users/u?purge=true", headers=tenant.headers)
    assert purged.status_code == 200 and purged.json()["counts"]["jobs"] >= 1
    gone = client.get(f"/v1/exports/{job['id']}/content", headers=tenant.headers)
    assert gone.status_code == 404


def _other(service: MemoryService) -> TenantKey:
    return new_tenant(service, "other")


def test_the_sdk_exports_and_downloads(tmp_path: Path) -> None:
    with Memory(settings=make_settings(tmp_path / "data")) as memory:
        memory.add(["one memory", "two memories"], user_id="u")
        job = memory.create_export()
        for _ in range(600):
            job = memory.get_export(job.id)
            if job.state in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        assert job.state == "succeeded", job
        saved = memory.download_export(job.id, tmp_path / "all.zip")
        assert saved.stat().st_size == job.scope["size_bytes"]


def test_an_archive_imports_over_rest_and_the_sdk_purges(
    service: MemoryService, client: TestClient, tenant: TenantKey, tmp_path: Path
) -> None:
    memory = {"text": "I like tea.", "user_id": "u"}
    client.post("/v1/memories", json=memory, headers=tenant.headers)
    started = client.post("/v1/exports", headers=tenant.headers).json()
    job = _finished(client, tenant, started["id"])
    archive = client.get(f"/v1/exports/{job['id']}/content", headers=tenant.headers).content

    # another tenant of the same instance: the ids are taken, reported, nothing merged
    stranger = _other(service)
    octet = {"Content-Type": "application/octet-stream"}
    clash = client.post("/v1/imports", content=archive, headers={**stranger.headers, **octet})
    assert clash.status_code == 200, clash.text
    assert {c["why"] for c in clash.json()["conflicts"]} == {"the id belongs to another tenant"}

    # a fresh instance takes it, once; a broken body is refused
    other = build_service(make_settings(tmp_path / "fresh"))
    try:
        with TestClient(create_app(other.settings, service=other)) as fresh:
            target = new_tenant(other, "copy")
            headers = {**target.headers, **octet}
            first = fresh.post("/v1/imports", content=archive, headers=headers)
            assert first.status_code == 200, first.text
            assert first.json()["inserted"]["memories"] == 1 and first.json()["conflicts"] == []
            again = fresh.post("/v1/imports", content=archive, headers=headers).json()
            assert again["skipped"]["memories"] == 1 and again["inserted"].get("memories", 0) == 0
            listed = fresh.get("/v1/memories", params={"user_id": "u"}, headers=target.headers)
            assert [m["text"] for m in listed.json()["data"]] == ["I like tea."]
            broken = fresh.post("/v1/imports", content=b"not a zip", headers=headers)
            assert broken.status_code == 422 and broken.json()["error"]["field"] == "archive"
    finally:
        other.close()

    path = tmp_path / "a.zip"
    path.write_bytes(archive)
    with Memory(settings=make_settings(tmp_path / "sdk")) as embedded:
        result = embedded.import_archive(path)
        assert result.inserted["memories"] == 1
        assert [m.text for m in embedded.get_all(user_id="u").data] == ["I like tea."]
        purged = embedded.purge(user_id="u")
        assert purged.counts.memories == 1 and purged.scope == "user"
        assert embedded.get_all(user_id="u").data == []
