"""The consolidation step for episodic KV caches: re-encode old ones at fewer bits, drop the
least used past each tenant's retention budget; cartridges and other tenants untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import torch

from consolidation.dispatch import decay_all
from consolidation.steps.kv import consolidate_kv_caches
from memsvc.lifecycle.kv import KVCandidate, plan_drops, plan_reencode
from memsvc.schemas import KVLookupRequest
from memsvc.service import MemoryService
from tests.conftest import TenantKey
from tests.integration.kv.conftest import container_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _cand(id_: str, size: int, uses: int, age_days: float, bits: float = 16.0) -> KVCandidate:
    return KVCandidate(id_, size, bits, T0 - timedelta(days=age_days), None, uses)


def test_rules() -> None:
    caches = [_cand("old", 10, 0, 9), _cand("new", 10, 0, 1), _cand("used", 10, 3, 20)]
    assert plan_drops(caches, budget_bytes=30) == []
    assert plan_drops(caches, budget_bytes=20) == ["old"]  # unused and longest unused
    assert plan_drops(caches, budget_bytes=5) == ["old", "new", "used"]
    assert plan_reencode(caches, now=T0, after_seconds=2 * 86400, target_bits=3.5) == [
        "old",
        "used",
    ]
    small = [_cand("q", 10, 0, 9, bits=3)]
    assert plan_reencode(small, now=T0, after_seconds=0, target_bits=3) == []


def _session(service, tenant, model, ids, session_id):
    origin = {"kind": "session", "session_id": session_id}
    return service.kv.save_session(
        tenant.tenant_id, session_id, container_for(model, ids, origin=origin)
    )


def _blobs(service: MemoryService) -> set[str]:
    return {p.name for p in service.deps.blobs.root.rglob("*") if p.is_file()}  # type: ignore[attr-defined]


def test_reencode_then_drop(
    service: MemoryService, tenant: TenantKey, other_tenant: TenantKey, tiny_model, token_ids
) -> None:
    first, second, third = (
        _session(service, tenant, tiny_model, token_ids, f"s{i}") for i in range(3)
    )
    theirs = _session(service, other_tenant, tiny_model, token_ids, "theirs")
    cart = service.kv.save_cartridge(tenant.tenant_id, container_for(tiny_model, token_ids))
    original = service.kv.load(tenant.tenant_id, second.id).layers()

    # nothing is old yet
    nothing = {"kv_reencoded": 0, "kv_dropped": 0, "kv_blobs_collected": 0}
    assert consolidate_kv_caches(service.deps) == nothing
    later = datetime.now(UTC) + timedelta(days=2)
    counts = consolidate_kv_caches(service.deps, tenant_id=tenant.tenant_id, now=later)
    assert counts == nothing | {"kv_reencoded": 3}
    shrunk = service.kv.get(tenant.tenant_id, second.id)
    assert shrunk.codec["name"] == "kvquant" and shrunk.codec["spec"]["k_bits"] == 3
    assert (
        shrunk.size_bytes < second.size_bytes / 4 and shrunk.bits_per_elem < 8
    )  # headers weigh on 150 tokens
    assert shrunk.sha256 != second.sha256 and second.sha256 not in _blobs(service)
    restored = service.kv.load(tenant.tenant_id, second.id).layers()
    rel = (restored[0][1] - original[0][1]).norm() / original[0][1].norm()
    assert float(rel) < 0.25  # 3-bit values (relative L2; relMSE ~0.04 as in the KV bench)
    assert service.kv.get(tenant.tenant_id, cart.id).codec == {"name": "raw"}  # cartridge kept
    assert service.kv.get(other_tenant.tenant_id, theirs.id).codec == {"name": "raw"}
    request = KVLookupRequest(model_id=second.model_id, token_ids=token_ids)
    assert service.kv.lookup(tenant.tenant_id, request).n_tokens == len(token_ids)  # still found

    # retention: room for two; the second was used, so the first (unused, oldest) goes
    service.kv.open_content(tenant.tenant_id, second.id)
    service.kv.set_limits(tenant.tenant_id, retention_bytes=2 * shrunk.size_bytes + 1)
    counts = decay_all(service.deps)  # the wired step: the beat's decay pass
    assert counts["kv_dropped"] == 1 and counts["kv_reencoded"] == 0
    left = {kv.id for kv in service.kv.list(tenant.tenant_id, kind="episodic").data}
    assert left == {second.id, third.id}
    assert service.kv.get(tenant.tenant_id, cart.id)  # cartridges do not count
    assert service.kv.get(other_tenant.tenant_id, theirs.id)  # nor other tenants
    again = consolidate_kv_caches(service.deps, tenant_id=tenant.tenant_id, now=later)
    assert again == nothing  # idempotent
    assert first.sha256 not in _blobs(service)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_same_blob_shared_until_the_last_row_goes(service, tenant, tiny_model, token_ids) -> None:
    container = container_for(tiny_model, token_ids)
    body = container.to_bytes()
    a = service.kv.save_cartridge(tenant.tenant_id, container)
    path = service.deps.blobs.new_tmp_file()
    path.write_bytes(body)
    b = service.kv.store_file(tenant.tenant_id, path, kind="cartridge")
    assert a.sha256 == b.sha256 and a.id != b.id
    service.kv.delete(tenant.tenant_id, a.id)
    assert a.sha256 in _blobs(service)
    assert torch.equal(
        service.kv.load(tenant.tenant_id, b.id).layers()[0][0], container.layers()[0][0]
    )
    service.kv.delete(tenant.tenant_id, b.id)
    assert a.sha256 not in _blobs(service)
