"""API keys: list, revoke, rotate (admin routes), and how fast a revoked key is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from consolidation.dispatch import build_service
from memsvc.service import MemoryService
from tests.conftest import ADMIN_KEY, TenantKey, make_settings, new_tenant

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _works(client: TestClient, key: str) -> bool:
    status = client.get("/v1/memories", headers=_bearer(key)).status_code
    assert status in (200, 401), status
    return status == 200


def _key_id(client: TestClient, tenant: TenantKey) -> str:
    keys = client.get(f"/v1/admin/tenants/{tenant.tenant_id}/keys", headers=ADMIN).json()["data"]
    (key,) = [k for k in keys if tenant.key.startswith(k["prefix"])]
    return key["id"]


@pytest.fixture
def cached(tmp_path: Path, db_url: str) -> Iterator[tuple[MemoryService, TestClient]]:
    """A service that caches key lookups for a minute, as a production replica does."""
    service = build_service(make_settings(tmp_path / "data", db_url, auth_cache_seconds=60))
    with TestClient(create_app(service.settings, service=service)) as client:
        yield service, client
    service.close()


def test_revoke_refuses_the_key_at_once_on_the_revoking_replica(cached) -> None:
    service, client = cached
    tenant = new_tenant(service)
    assert _works(client, tenant.key)  # now cached for 60 s
    key_id = _key_id(client, tenant)
    revoked = client.post(
        f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key_id}/revoke", headers=ADMIN
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert not _works(client, tenant.key)
    listed = client.get(f"/v1/admin/tenants/{tenant.tenant_id}/keys", headers=ADMIN).json()
    assert listed["count"] == 1 and listed["data"][0]["revoked_at"] == revoked.json()["revoked_at"]
    # Revoking again keeps the first revocation time.
    again = client.post(f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key_id}/revoke", headers=ADMIN)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


def test_a_grace_period_ends_even_for_a_cached_key(cached) -> None:
    service, client = cached
    tenant = new_tenant(service)
    key_id = _key_id(client, tenant)
    client.post(
        f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key_id}/revoke",
        json={"grace_seconds": 1.0},
        headers=ADMIN,
    )
    assert _works(client, tenant.key)  # cached, but only until revoked_at
    time.sleep(1.2)
    assert not _works(client, tenant.key)


def test_rotate_issues_a_new_key_and_revokes_the_old(client: TestClient, tenant: TenantKey) -> None:
    key_id = _key_id(client, tenant)
    rotated = client.post(
        f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key_id}/rotate",
        json={"name": "next"},
        headers=ADMIN,
    )
    assert rotated.status_code == 201, rotated.text
    body = rotated.json()
    assert body["revoked"]["id"] == key_id and body["revoked"]["revoked_at"]
    assert body["key"]["name"] == "next" and body["key"]["key"].startswith("msk_")
    assert _works(client, body["key"]["key"]) and not _works(client, tenant.key)
    refused = client.post(
        f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key_id}/rotate", headers=ADMIN
    )
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "key_id"


def test_rotate_with_grace_keeps_both_keys_working_until_it_ends(
    client: TestClient, tenant: TenantKey
) -> None:
    key_id = _key_id(client, tenant)
    grace = 4.0  # long enough that a loaded machine still checks inside it
    started = time.monotonic()
    rotated = client.post(
        f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key_id}/rotate",
        json={"grace_seconds": grace},
        headers=ADMIN,
    ).json()
    new_key = rotated["key"]["key"]
    assert _works(client, tenant.key) and _works(client, new_key)
    assert time.monotonic() - started < grace, "checked after the grace ended: no evidence"
    time.sleep(max(0.0, grace + 0.3 - (time.monotonic() - started)))
    assert not _works(client, tenant.key) and _works(client, new_key)


def test_keys_are_managed_per_tenant_by_the_admin_only(
    client: TestClient, tenant: TenantKey, other_tenant: TenantKey
) -> None:
    key_id = _key_id(client, tenant)
    # Another tenant's path does not reach this key.
    wrong = client.post(
        f"/v1/admin/tenants/{other_tenant.tenant_id}/keys/{key_id}/revoke", headers=ADMIN
    )
    assert wrong.status_code == 404 and wrong.json()["error"]["field"] == "key_id"
    missing = client.post(f"/v1/admin/tenants/nope/keys/{key_id}/revoke", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "tenant_id"
    forbidden = client.post(
        f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key_id}/revoke", headers=_bearer(tenant.key)
    )
    assert forbidden.status_code == 403
    bad = client.post(
        f"/v1/admin/tenants/{tenant.tenant_id}/keys/{key_id}/revoke",
        json={"grace_seconds": -1},
        headers=ADMIN,
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "grace_seconds"
    assert _works(client, tenant.key) and _works(client, other_tenant.key)
