"""The partition cache: least recently used order, the memory budget, pins."""

from __future__ import annotations

from memsvc.retrieval.partitions import PartitionCache

A, B, C = ("t", "a"), ("t", "b"), ("t", "c")


def test_evicts_least_recently_used_beyond_the_budget() -> None:
    cache = PartitionCache(budget_bytes=250)
    for key in (A, B, C):
        cache.added(key, 100)
    assert cache.total_bytes == 300 and cache.keys() == [A, B, C]
    assert cache.victims() == [A]  # 200 left: within 250
    cache.pin([A])  # used again: now the most recent
    cache.unpin([A])
    assert cache.keys() == [B, C, A] and cache.victims() == [B]
    cache.forget(B)
    assert cache.victims() == [] and B not in cache and cache.evictions == 1


def test_pinned_partitions_stay_even_over_budget() -> None:
    cache = PartitionCache(budget_bytes=50)
    cache.added(A, 100)
    cache.added(B, 100)
    cache.pin([A, B])
    assert cache.victims() == []  # a search uses both: the budget waits
    cache.unpin([B])
    assert cache.victims() == [B]
    cache.pin([A])  # pins count: two searches over A
    cache.unpin([A])
    assert cache.victims() == [B]
    cache.unpin([A])
    assert cache.victims() == [B, A]  # B was used less recently than A


def test_resize_and_zero_budget() -> None:
    cache = PartitionCache(budget_bytes=0)
    cache.added(A)
    cache.resize(A, 10)
    cache.resize(B, 10)  # not loaded: ignored
    assert cache.total_bytes == 10 and len(cache) == 1 and cache.loads == 1
    assert cache.victims() == [A]
    cache.clear()
    assert cache.keys() == [] and cache.victims() == []
