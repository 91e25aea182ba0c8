"""Partitions loaded on demand: a restarted service loads nothing until searched, then only the
partitions a search needs; results equal a service that loaded everything at start; writes
before and after loading are found; a memory budget evicts the least recently searched."""

from __future__ import annotations

from pathlib import Path

import pytest

from consolidation.dispatch import build_service
from memsvc.config.partitions import PartitionsConfig
from memsvc.schemas import MemoryCreate, MemoryFilter, SearchRequest
from memsvc.service import MemoryService
from memsvc.settings import Settings
from tests.conftest import TenantKey, make_settings, new_tenant

TEXTS = {
    "u1": ["the wifi password is hunter2", "I moved to Lisbon in May", "my cat is called Miso"],
    "u2": ["the boiler is serviced every October", "Ana likes green tea", "I play the cello"],
    "": ["the office closes at six", "deploys happen on Tuesdays"],
}


def _settings(data_dir: Path, db_url: str, **partitions: object) -> Settings:
    return make_settings(data_dir, db_url, partitions=PartitionsConfig(**partitions))


def _fill(service: MemoryService, tenant: TenantKey) -> None:
    for user, texts in TEXTS.items():
        items = [MemoryCreate(text=t, user_id=user or None) for t in texts]
        service.memories.add(tenant.tenant_id, items, actor="test")


def _search(service: MemoryService, tenant: TenantKey, query: str, user: str | None) -> list:
    request = SearchRequest(query=query, filters=MemoryFilter(user_id=user), top_k=5)
    found = service.recall.search(tenant.tenant_id, request)
    return [(r.memory.text, round(r.score, 6)) for r in found.data]


def _loaded(service: MemoryService) -> list[tuple[str, str]]:
    cache = service.deps.indexes.cache
    assert cache is not None
    return sorted(cache.keys())


def test_restart_loads_nothing_until_searched(tmp_path: Path, db_url: str) -> None:
    settings = _settings(tmp_path / "data", db_url)
    first = build_service(settings)
    try:
        tenant = new_tenant(first, "od")
        _fill(first, tenant)
        queries = [("wifi password", "u1"), ("tea", "u2"), ("office hours", None)]
        before = [_search(first, tenant, q, u) for q, u in queries]
    finally:
        first.close()

    second = build_service(settings)
    try:
        second.deps.warm_up()  # what `memsvc serve` does before it is ready
        indexes = second.deps.indexes
        assert _loaded(second) == [] and len(indexes.vectors) == 0 and len(indexes.lexical) == 0
        t = tenant.tenant_id
        assert _search(second, tenant, *queries[0]) == before[0]
        assert _loaded(second) == [(t, "u1")]  # only the partition searched
        assert _search(second, tenant, *queries[1]) == before[1]
        assert _loaded(second) == [(t, "u1"), (t, "u2")]
        # a tenant-wide search needs every partition of the tenant
        assert _search(second, tenant, *queries[2]) == before[2]
        assert _loaded(second) == [(t, ""), (t, "u1"), (t, "u2")]
        assert len(indexes.vectors) == sum(len(v) for v in TEXTS.values())
    finally:
        second.close()


def test_on_demand_equals_preloaded_and_follows_writes(tmp_path: Path, db_url: str) -> None:
    on_demand = build_service(_settings(tmp_path / "a", db_url))
    try:
        tenant = new_tenant(on_demand, "eq")
        _fill(on_demand, tenant)
        preloaded = build_service(_settings(tmp_path / "b", db_url, on_demand=False))
        try:
            t = tenant.tenant_id
            for query, user in [("cello", "u2"), ("Lisbon", "u1"), ("password", None)]:
                assert _search(on_demand, tenant, query, user) == _search(
                    preloaded, tenant, query, user
                )
            # a write to a loaded partition and one to a partition not loaded yet
            assert (t, "u3") not in on_demand.deps.indexes.cache
            for user, text in [("u1", "the spare key is under the mat"), ("u3", "I ski")]:
                items = [MemoryCreate(text=text, user_id=user)]
                on_demand.memories.add(t, items, actor="test")
            assert _search(on_demand, tenant, "spare key", "u1")[0][0].startswith("the spare")
            assert _search(on_demand, tenant, "ski", "u3")[0][0] == "I ski"
            gone = on_demand.memories.list(t, MemoryFilter(user_id="u1"), limit=100).data
            for memory in gone:
                on_demand.memories.delete(t, memory.id, actor="test")
            assert _search(on_demand, tenant, "wifi password", "u1") == []
        finally:
            preloaded.close()
    finally:
        on_demand.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_memory_budget_evicts_least_recently_searched(tmp_path: Path, db_url: str) -> None:
    probe = build_service(_settings(tmp_path / "probe", db_url))
    try:
        tenant = new_tenant(probe, "budget")
        _fill(probe, tenant)
        _search(probe, tenant, "x", "u1")
        _search(probe, tenant, "x", "u2")
        sizes = [probe.deps.indexes.nbytes((tenant.tenant_id, u)) for u in ("u1", "u2")]
        one = max(sizes)
    finally:
        probe.close()
    assert min(sizes) > 10
    # room for one of the two partitions, not both
    service = build_service(_settings(tmp_path / "svc", db_url, memory_budget_bytes=one + 10))
    try:
        t = tenant.tenant_id
        first = _search(service, tenant, "wifi", "u1")
        assert _loaded(service) == [(t, "u1")]
        _search(service, tenant, "tea", "u2")
        assert _loaded(service) == [(t, "u2")]  # u1 evicted: least recently searched
        assert _search(service, tenant, "wifi", "u1") == first  # reloaded, same answer
        # a search larger than the budget still runs (its partitions are pinned while it does)
        assert len(_search(service, tenant, "the", None)) == 5
        cache = service.deps.indexes.cache
        assert cache is not None and cache.total_bytes <= one + 10
        # u1, u2, u1 again, then "" and u2 for the tenant-wide search (u1 was still loaded)
        assert cache.loads == 5 and cache.evictions >= 3
    finally:
        service.close()

    zero = build_service(_settings(tmp_path / "zero", db_url, memory_budget_bytes=0))
    try:  # nothing is kept between searches, and each search is still right
        assert _search(zero, tenant, "wifi", "u1") == first and _loaded(zero) == []
    finally:
        zero.close()
