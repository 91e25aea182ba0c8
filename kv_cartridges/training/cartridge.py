"""``Cartridge``: a trainable KV prefix of P tokens per layer (Cartridges, arXiv 2506.06266).

The model sees the cartridge exactly where a cached context would be: as the first P positions of
its KV cache. It starts as the KV of the corpus' first P tokens; the first token stays frozen (it
is the attention sink, and training it destabilises every later position).

Shapes: ``L, H, P, D`` = layers, kv-heads, cartridge tokens, head dim.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Cartridge", "KVList", "kv_to_cache"]

KVList = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (k, v), each [B, H, T, D]


def kv_to_cache(kv: KVList) -> Any:
    """A transformers ``DynamicCache`` holding ``kv`` (the cache concatenates: no copy kept)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for i, (k, v) in enumerate(kv):
        cache.update(k, v, i)
    return cache


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.detach().float().pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-6)


class Cartridge(nn.Module):
    """Per-layer keys and values for P positions; token 0 frozen, tokens 1..P-1 trainable."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """``keys``/``values``: ``[L, H, P, D]`` float tensors (copied)."""
        super().__init__()
        assert keys.shape == values.shape, (
            f"keys {tuple(keys.shape)} != values {tuple(values.shape)}"
        )
        assert keys.dim() == 4 and keys.shape[2] >= 2, (
            f"need [L, H, P>=2, D], got {tuple(keys.shape)}"
        )
        # Parameters are kept in units of each layer's RMS: Adam moves every entry by about lr
        # per step whatever its scale, and SmolLM2's layer-0 values are ~40x smaller than its
        # last layer's; in raw units one lr wrecks the small layers before the large ones move.
        k_scale = _rms(keys)  # (L, 1, 1, 1)
        v_scale = _rms(values)  # (L, 1, 1, 1)
        self.register_buffer("k_scale", k_scale)
        self.register_buffer("v_scale", v_scale)
        self.register_buffer("first_keys", keys[:, :, :1].detach().clone())  # (L, H, 1, D)
        self.register_buffer("first_values", values[:, :, :1].detach().clone())  # (L, H, 1, D)
        self.keys = nn.Parameter(keys[:, :, 1:].detach() / k_scale)  # (L, H, P-1, D)
        self.values = nn.Parameter(values[:, :, 1:].detach() / v_scale)  # (L, H, P-1, D)

    @property
    def tokens(self) -> int:
        """P: the number of positions the cartridge occupies."""
        return self.keys.shape[2] + 1

    @property
    def num_layers(self) -> int:
        return self.keys.shape[0]

    @classmethod
    @torch.no_grad()
    def from_prefix(cls, model: nn.Module, ids: torch.Tensor, tokens: int) -> Cartridge:
        """Initialise from the KV of ``ids[:tokens]`` (``ids``: 1-D token ids of the corpus)."""
        if ids.dim() != 1 or ids.numel() < tokens:
            raise ValueError(f"need at least {tokens} corpus tokens, got {ids.numel()}")
        if tokens < 2:
            raise ValueError(f"tokens must be >= 2 (the first is frozen), got {tokens}")
        device = next(model.parameters()).device
        out = model(ids[:tokens].unsqueeze(0).to(device), use_cache=True)
        kv = [(layer.keys[0], layer.values[0]) for layer in out.cache.layers]
        return cls(torch.stack([k for k, _ in kv]), torch.stack([v for _, v in kv]))  # (L, H, P, D)

    def full_keys(self) -> torch.Tensor:
        return torch.cat([self.first_keys, self.keys * self.k_scale], dim=2)  # (L, H, P, D)

    def full_values(self) -> torch.Tensor:
        return torch.cat([self.first_values, self.values * self.v_scale], dim=2)  # (L, H, P, D)

    def kv(self, batch: int = 1) -> KVList:
        """Per-layer ``(k, v)`` of shape ``[batch, H, P, D]``, still attached to the graph."""
        K, V = self.full_keys(), self.full_values()
        return [
            (
                K[i].unsqueeze(0).expand(batch, -1, -1, -1),
                V[i].unsqueeze(0).expand(batch, -1, -1, -1),
            )
            for i in range(self.num_layers)
        ]  # L x (B, H, P, D)

    def cache(self, batch: int = 1) -> Any:
        """A ``DynamicCache`` whose first P positions are the cartridge (gradients flow into it)."""
        return kv_to_cache(self.kv(batch))

    def detached_kv(self) -> KVList:
        """Per-layer ``(k, v)`` copies, ``[1, H, P, D]``, for inference, quantization or storage."""
        with torch.no_grad():
            return [(k.clone(), v.clone()) for k, v in self.kv(1)]

    def to_cache(self) -> Any:
        """A detached ``DynamicCache`` for generation (see :func:`generate` in this package)."""
        return kv_to_cache(self.detached_kv())
