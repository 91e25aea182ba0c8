"""The faiss partitions: upsert, remove, filtered search, snapshots."""

from __future__ import annotations

import numpy as np

from stores.vector_index import VectorIndex


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_search_finds_exact_vector_and_respects_partitions() -> None:
    rng = np.random.default_rng(0)
    index = VectorIndex(16)
    a, b = _unit(rng, 20), _unit(rng, 20)
    index.upsert(("t1", "u"), np.arange(20), a)
    index.upsert(("t2", "u"), np.arange(100, 120), b)
    hits = index.search(("t1", "u"), a[7], k=3)
    assert hits[0][0] == 7 and abs(hits[0][1] - 1.0) < 1e-5
    # The other tenant's identical-user partition never answers for t1.
    assert all(pk < 20 for pk, _ in index.search(("t1", "u"), b[3], k=20))
    assert index.partitions("t1") == [("t1", "u")]


def test_upsert_replaces_and_remove_forgets() -> None:
    rng = np.random.default_rng(1)
    index = VectorIndex(16)
    v = _unit(rng, 5)
    index.upsert(("t", ""), np.arange(5), v)
    index.upsert(("t", ""), np.array([2]), v[4:5])  # pk 2 now carries vector 4
    assert len(index) == 5
    top = index.search(("t", ""), v[4], k=2)
    assert {pk for pk, _ in top} == {2, 4}
    index.remove([2, 4, 999])
    assert len(index) == 3
    assert all(pk not in (2, 4) for pk, _ in index.search(("t", ""), v[4], k=5))


def test_allowed_ids_restrict_the_search() -> None:
    rng = np.random.default_rng(2)
    index = VectorIndex(16)
    v = _unit(rng, 50)
    index.upsert(("t", "u"), np.arange(50), v)
    hits = index.search(("t", "u"), v[0], k=10, allowed=np.array([3, 5, 8]))
    assert sorted(pk for pk, _ in hits) == [3, 5, 8]
    assert index.search(("t", "u"), v[0], k=10, allowed=np.array([], dtype=np.int64)) == []


def test_snapshot_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(3)
    index = VectorIndex(16)
    v = _unit(rng, 10)
    index.upsert(("t", "u1"), np.arange(5), v[:5])
    index.upsert(("t", "u2"), np.arange(5, 10), v[5:])
    index.save(tmp_path, {"watermark": [7, 3]})
    loaded = VectorIndex(16)
    assert loaded.load(tmp_path) == {"watermark": [7, 3]}
    assert len(loaded) == 10
    assert loaded.search(("t", "u2"), v[6], k=1)[0][0] == 6
    assert VectorIndex(8).load(tmp_path) is None  # another width: not usable, rebuilt instead


def test_damaged_snapshot_is_ignored(tmp_path) -> None:
    (tmp_path / "vectors.safetensors").write_bytes(b"not a snapshot")
    assert VectorIndex(16).load(tmp_path) is None
