"""transformers adapters: a ``DynamicCache`` to per-layer ``(k, v)`` tensors and back.

Works with transformers 5.x caches, whose layers hold ``keys`` / ``values`` ``[B, H, T, D]``.
Each layer's shape is checked against the model's fingerprint before anything is copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from kv_cartridges.fingerprint import ModelFingerprint

__all__ = ["cache_layers", "crop_layers", "layers_to_cache"]

KV = list[tuple[torch.Tensor, torch.Tensor]]


def cache_layers(cache: Any, model: ModelFingerprint | None = None) -> KV:
    """The ``(keys, values)`` of every layer of a transformers cache (not copied)."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise TypeError(f"expected a transformers Cache with .layers, got {type(cache).__name__}")
    out: KV = []
    for i, layer in enumerate(layers):
        k, v = getattr(layer, "keys", None), getattr(layer, "values", None)
        if not isinstance(k, torch.Tensor) or not isinstance(v, torch.Tensor):
            raise ValueError(f"cache layer {i} holds no keys/values (an empty or lazy layer)")
        if model is not None and (k.shape[1], k.shape[3]) != (model.num_kv_heads, model.head_dim):
            raise ValueError(
                f"cache layer {i} is {list(k.shape)}; the model has {model.num_kv_heads} KV "
                f"heads of dim {model.head_dim}"
            )
        out.append((k, v))
    if model is not None and len(out) != model.num_layers:
        raise ValueError(f"the cache has {len(out)} layers; the model has {model.num_layers}")
    return out


def crop_layers(layers: Sequence[tuple[torch.Tensor, torch.Tensor]], n_tokens: int) -> KV:
    """The first ``n_tokens`` of every layer (a stored cache longer than the matched prefix)."""
    return [(k[:, :, :n_tokens], v[:, :, :n_tokens]) for k, v in layers]


def layers_to_cache(
    layers: Sequence[tuple[torch.Tensor, torch.Tensor]], *, dtype: torch.dtype | None = None
) -> Any:
    """A ``DynamicCache`` holding these layers (cast to ``dtype`` when given, e.g. the model's)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for i, (k, v) in enumerate(layers):
        if dtype is not None:
            k, v = k.to(dtype), v.to(dtype)
        cache.update(k.contiguous(), v.contiguous(), i)
    return cache
