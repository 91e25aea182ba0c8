"""A small decoding loop over any KV cache (a prefilled context, or a cartridge), batched.

Deterministic: greedy at ``temperature == 0``, else sampling from the ``top_k`` most likely tokens
with the given ``torch.Generator``. Returns every step's log-probabilities too, which is what the
self-study teacher needs (the distribution it sampled from is the distillation target). Rows of a
batch share a prompt length (no padding); each row stops on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Generation", "generate"]


@dataclass
class Generation:
    """Per row: ``tokens[b]`` the new ids, ``logprobs[b]`` (n_b, vocab) the distributions that
    chose them, ``prompt_logprobs[b]`` (T - keep_from, vocab) the predictions after each prompt
    token from ``keep_from`` on."""

    tokens: list[list[int]]
    logprobs: list[torch.Tensor]
    prompt_logprobs: list[torch.Tensor]


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
    keep_from: int | None = None,
) -> Generation:
    """Continue ``prompt`` ((T,) or (B, T) ids) after whatever ``cache`` holds (None: empty).

    A row stops after ``max_new_tokens`` or once its new tokens end with the ``stop`` sequence.
    ``keep_from`` (default: the last prompt position) bounds the prompt log-probs returned (they
    are vocab-sized per position). ``cache`` is extended in place.
    """
    from transformers import DynamicCache

    device = next(model.parameters()).device
    prompt = prompt.unsqueeze(0) if prompt.dim() == 1 else prompt  # (B, T)
    B, T = prompt.shape
    keep_from = T - 1 if keep_from is None else keep_from
    assert 0 <= keep_from < T, f"keep_from={keep_from} outside the prompt's {T} positions"
    cache = DynamicCache() if cache is None else cache
    keep = T - keep_from  # only these positions go through the LM head
    logits = model(prompt.to(device), cache=cache, use_cache=True, logits_to_keep=keep).logits
    kept = logits.float().log_softmax(-1).cpu()  # (B, T - keep_from, vocab)
    step = kept[:, -1]  # (B, vocab)
    steps: list[torch.Tensor] = []
    rows: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    for _ in range(max_new_tokens):
        picked = [_pick(step[b], temperature, top_k, generator) for b in range(B)]  # (B,)
        steps.append(step.cpu())
        for b in range(B):
            if not done[b]:
                rows[b].append(picked[b])
                done[b] = bool(stop) and rows[b][-len(stop) :] == stop
        if all(done):
            break
        nxt = torch.tensor(picked, device=device).unsqueeze(1)  # (B, 1)
        step = model(nxt, cache=cache, use_cache=True).logits[:, -1].float().log_softmax(-1)
    table = torch.stack(steps, dim=1)  # (B, steps, vocab)
    return Generation(rows, [table[b, : len(rows[b])] for b in range(B)], list(kept))


def _pick(
    logprobs: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None
) -> int:
    if temperature <= 0:
        return int(logprobs.argmax())
    top, idx = logprobs.topk(min(top_k, logprobs.numel()))  # (k,), (k,)
    probs = (top / temperature).softmax(-1).cpu()
    return int(idx[torch.multinomial(probs, 1, generator=generator)])
