"""A small decoding loop over any KV cache (a prefilled context, or a cartridge).

Deterministic: greedy at ``temperature == 0``, else sampling from the ``top_k`` most likely tokens
with the given ``torch.Generator``. Returns every step's log-probabilities too, which is what the
self-study teacher needs (the distribution it sampled from is the distillation target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Generation", "generate"]


@dataclass
class Generation:
    """``tokens``: the new ids; ``logprobs[i]``: log-softmax that chose ``tokens[i]`` (vocab,)."""

    tokens: list[int]
    logprobs: list[torch.Tensor]
    prompt_logprobs: torch.Tensor  # (T_prompt, vocab): predictions after each prompt token


@torch.inference_mode()
def generate(
    model: nn.Module,
    prompt: torch.Tensor,
    *,
    cache: Any = None,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int = 50,
    stop: list[int] | None = None,
    generator: torch.Generator | None = None,
) -> Generation:
    """Continue ``prompt`` (1-D ids) after whatever ``cache`` holds (``None``: an empty cache).

    Stops after ``max_new_tokens`` or once the new tokens end with the ``stop`` sequence.
    ``cache`` is extended in place.
    """
    from transformers import DynamicCache

    device = next(model.parameters()).device
    cache = DynamicCache() if cache is None else cache
    logits = model(prompt.unsqueeze(0).to(device), cache=cache, use_cache=True).logits[0]
    prompt_logprobs = logits.float().log_softmax(-1)  # (T, vocab)
    step = prompt_logprobs[-1]
    tokens: list[int] = []
    logprobs: list[torch.Tensor] = []
    for _ in range(max_new_tokens):
        token = _pick(step, temperature, top_k, generator)
        tokens.append(token)
        logprobs.append(step)
        if stop and tokens[-len(stop) :] == stop:
            break
        nxt = torch.tensor([[token]], device=device)
        step = model(nxt, cache=cache, use_cache=True).logits[0, -1].float().log_softmax(-1)
    return Generation(tokens, logprobs, prompt_logprobs)


def _pick(
    logprobs: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None
) -> int:
    if temperature <= 0:
        return int(logprobs.argmax())
    top, idx = logprobs.topk(min(top_k, logprobs.numel()))  # (k,), (k,)
    probs = (top / temperature).softmax(-1).cpu()
    return int(idx[torch.multinomial(probs, 1, generator=generator)])
