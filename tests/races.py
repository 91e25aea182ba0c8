"""Shared by the blob-race tests (local store, two processes, S3): a container to upload,
and an upload and a delete of the same bytes started so that they end together."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.format import KVContainer

ROUNDS = 50
FP = ModelFingerprint("LlamaForCausalLM", 2, 2, 16, 128, {"rope_theta": 10000.0}, "0" * 64)


def container_bytes(seed: int = 0, T: int = 64) -> bytes:
    g = torch.Generator().manual_seed(seed)
    layers = [(torch.randn(1, 2, T, 16, generator=g), torch.randn(1, 2, T, 16, generator=g))
              for _ in range(FP.num_layers)]  # fmt: skip
    return KVContainer.build(layers, FP, origin={"kind": "cartridge", "corpus_id": "c"}).to_bytes()


def median_seconds(call: Callable[[], object], n: int = 5) -> float:
    times = []
    for _ in range(n):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def offsets(upload_s: float, delete_s: float, spread: float = 0.004) -> list[float]:
    """Per round, how long after the upload the delete starts (negative: before it): both
    end together, give or take up to ``spread`` seconds (11 steps)."""
    aligned = upload_s - delete_s
    return [aligned + (n % 11 - 5) / 5 * spread for n in range(ROUNDS)]


def race(upload: Callable[[], str], delete: Callable[[], object], offset: float) -> str:
    """Run ``upload`` and ``delete`` with the delete started ``offset`` seconds after the
    upload (before it when negative); the upload's result."""
    start = threading.Barrier(2)

    def after(call: Callable[[], object], delay: float) -> object:
        start.wait()
        time.sleep(max(delay, 0.0))
        return call()

    with ThreadPoolExecutor(2) as pool:
        deleted = pool.submit(after, delete, offset)
        uploaded = pool.submit(after, upload, -offset)
        deleted.result()
        return uploaded.result()  # type: ignore[return-value]
