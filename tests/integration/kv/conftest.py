"""KV backend fixtures: a tiny random Llama (fast), the real SmolLM2-135M (loaded once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from kv_cartridges.adapters import cache_layers
from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.format import KVContainer
from kv_cartridges.quant import QuantSpec


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One torch thread: on these shared cores two OpenMP threads stall each other (the real
    model's 12 greedy steps took 34 s with 2 threads under load, 1.2 s with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def smollm2(smollm2_model) -> tuple[object, object]:
    """SmolLM2-135M-Instruct (model, tokenizer): the session's one copy (tests/conftest.py)."""
    return smollm2_model


def prefill(model, ids: list[int]):
    """The model's cache after ``ids`` and the logits of the last position."""
    with torch.inference_mode():
        out = model(torch.tensor([ids]), use_cache=True)
    return out.cache, out.logits[0, -1]


def container_for(
    model,
    ids: list[int],
    *,
    spec: QuantSpec | None = None,
    origin: dict | None = None,
) -> KVContainer:
    cache, _ = prefill(model, ids)
    fp = ModelFingerprint.from_model(model)
    return KVContainer.build(
        cache_layers(cache, fp),
        fp,
        spec=spec,
        token_ids=ids,
        origin=origin or {"kind": "cartridge", "corpus_id": "c1"},
    )


@pytest.fixture
def token_ids() -> Iterator[list[int]]:
    g = torch.Generator().manual_seed(1)
    yield torch.randint(0, 128, (150,), generator=g).tolist()
