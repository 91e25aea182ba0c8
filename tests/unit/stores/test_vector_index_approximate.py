"""Large partitions switch to an IVF index: recall@10 against exact search on clustered random
vectors (fixed seed) at the default IVF shape, removals and upserts, filtered searches exact,
snapshots."""

from __future__ import annotations

import numpy as np

from memsvc.config.partitions import PartitionsConfig
from stores.vector_index import Approximate, VectorIndex

DIM = 64
KEY = ("t", "u")


def clustered(n: int, seed: int, clusters: int = 40) -> np.ndarray:
    """Unit vectors around random centres (embeddings cluster by topic)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def default_approximate(above: int) -> Approximate:
    """The shipped IVF shape (MEMSVC_PARTITIONS__*), with a test-sized threshold."""
    config = PartitionsConfig()
    return Approximate(
        above=above,
        lists_per_sqrt=config.ivf_lists_per_sqrt,
        probe_fraction=config.ivf_probe_fraction,
        min_probe=config.ivf_min_probe,
    )


def _pair(n: int) -> tuple[VectorIndex, VectorIndex, np.ndarray]:
    vectors = clustered(n, seed=0)
    ids = np.arange(1, n + 1, dtype=np.int64)
    exact, approx = VectorIndex(DIM), VectorIndex(DIM, default_approximate(above=n // 2))
    exact.upsert(KEY, ids, vectors)
    approx.upsert(KEY, ids, vectors)
    return exact, approx, vectors


def recall_at_10(exact: VectorIndex, approx: VectorIndex, queries: np.ndarray) -> float:
    found = []
    for q in queries:
        truth = {pk for pk, _ in exact.search(KEY, q, 10)}
        got = {pk for pk, _ in approx.search(KEY, q, 10)}
        found.append(len(truth & got) / 10)
    return float(np.mean(found))


def test_switch_to_ivf_above_the_threshold_keeps_recall() -> None:
    exact, approx, _ = _pair(8000)
    assert not exact.is_approximate(KEY) and approx.is_approximate(KEY)
    recall = recall_at_10(exact, approx, clustered(200, seed=1))
    assert recall >= 0.98, recall


def test_small_partitions_stay_exact() -> None:
    index = VectorIndex(DIM, Approximate(above=100))
    index.upsert(KEY, np.arange(100, dtype=np.int64), clustered(100, seed=2))
    assert not index.is_approximate(KEY)
    index.upsert(KEY, np.array([100], dtype=np.int64), clustered(1, seed=3))
    assert index.is_approximate(KEY)  # 101 > 100


def test_approximate_partition_upsert_remove_and_filter() -> None:
    exact, approx, vectors = _pair(4000)
    q = vectors[7]
    assert approx.search(KEY, q, 1)[0][0] == 8  # its own vector is nearest
    approx.remove([8])
    assert 8 not in {pk for pk, _ in approx.search(KEY, q, 10)} and approx.size(KEY) == 3999
    approx.upsert(KEY, np.array([5000], dtype=np.int64), q[None, :])  # a new id, same vector
    approx.upsert(KEY, np.array([9], dtype=np.int64), q[None, :])  # an id moved next to it
    assert {pk for pk, _ in approx.search(KEY, q, 2)} == {5000, 9}
    # a filtered search is exact over the allowed ids, whatever the lists probed
    allowed = np.array([3, 500, 1999, 3999, 8, 123456], dtype=np.int64)
    exact.remove([8])
    exact.upsert(KEY, np.array([9], dtype=np.int64), q[None, :])
    want = exact.search(KEY, q, 3, allowed)
    got = approx.search(KEY, q, 3, allowed)
    assert [pk for pk, _ in got] == [pk for pk, _ in want]
    assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    assert approx.search(KEY, q, 3, np.array([], dtype=np.int64)) == []
    assert approx.nbytes(KEY) > 4000 * DIM * 4
    approx.drop(KEY)
    assert approx.size(KEY) == 0 and len(approx) == 0


def test_snapshot_of_an_approximate_partition(tmp_path) -> None:
    _, approx, vectors = _pair(3000)
    approx.save(tmp_path, {"watermark": [1, 1]})
    loaded = VectorIndex(DIM, default_approximate(above=1500))
    assert loaded.load(tmp_path) == {"watermark": [1, 1]}
    assert loaded.is_approximate(KEY) and loaded.size(KEY) == 3000
    assert loaded.search(KEY, vectors[42], 1)[0][0] == 43
    flat = VectorIndex(DIM)  # the snapshot holds exact vectors: an exact index can load it
    flat.load(tmp_path)
    assert not flat.is_approximate(KEY) and flat.search(KEY, vectors[42], 1)[0][0] == 43
