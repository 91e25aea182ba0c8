"""A key revoked through one replica is refused by another within MEMSVC_AUTH_CACHE_SECONDS."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.e2e.conftest import ADMIN_HEADERS, create_tenant

CACHE_SECONDS = 2.0
# Scheduling noise on a loaded machine on top of the bound (a poll every 0.1 s).
SLACK_SECONDS = 1.5


def _status(url: str, headers: dict[str, str]) -> int:
    return httpx.get(f"{url}/v1/memories", headers=headers, timeout=10).status_code


def _refused_after(url: str, headers: dict[str, str], since: float, limit: float) -> float:
    """Seconds from ``since`` until ``url`` refuses the key (polled); fails past ``limit``."""
    while time.monotonic() - since < limit:
        status = _status(url, headers)
        assert status in (200, 401), status
        if status == 401:
            return time.monotonic() - since
        time.sleep(0.1)
    raise AssertionError(f"{url} still accepts the key {limit:.1f}s after its revocation")


def test_revoke_and_rotate_through_one_replica_reach_the_other_within_the_bound(
    servers, pg_url: str, tmp_path: Path
) -> None:
    env = {"MEMSVC_DATABASE_URL": pg_url, "MEMSVC_AUTH_CACHE_SECONDS": str(CACHE_SECONDS)}
    a = servers(tmp_path / "a", env)
    b = servers(tmp_path / "b", env)

    # Revoked through A: A refuses it at once, B (which has it cached) within the bound.
    tenant = create_tenant(a.url, "revoked")
    assert _status(b.url, tenant.headers) == 200  # B has it cached now
    revoke = f"{a.url}/v1/admin/tenants/{tenant.tenant_id}/keys/{tenant.key_id}/revoke"
    assert httpx.post(revoke, headers=ADMIN_HEADERS).status_code == 200
    revoked_at = time.monotonic()
    assert _status(a.url, tenant.headers) == 401
    _refused_after(b.url, tenant.headers, revoked_at, CACHE_SECONDS + SLACK_SECONDS)

    # Rotated through B with a 1 s grace: the new key works on both at once; the old one is
    # refused everywhere once the grace and a replica's cache have passed.
    tenant = create_tenant(a.url, "rotated")
    assert _status(a.url, tenant.headers) == 200
    rotate = f"{b.url}/v1/admin/tenants/{tenant.tenant_id}/keys/{tenant.key_id}/rotate"
    rotated = httpx.post(rotate, json={"grace_seconds": 1}, headers=ADMIN_HEADERS)
    assert rotated.status_code == 201, rotated.text
    rotated_at = time.monotonic()
    new = {"Authorization": f"Bearer {rotated.json()['key']['key']}"}
    assert _status(a.url, new) == _status(b.url, new) == 200
    for url in (a.url, b.url):
        _refused_after(url, tenant.headers, rotated_at, 1 + CACHE_SECONDS + SLACK_SECONDS)
    assert _status(a.url, new) == _status(b.url, new) == 200
