"""Quantize a per-layer KV list (a trained cartridge) with ``kv_cartridges.quant``, and back."""

from __future__ import annotations

from dataclasses import dataclass

from kv_cartridges.quant import KeyRope, PackedKV, QuantSpec, decode, encode
from kv_cartridges.training.cartridge import KVList

__all__ = ["QuantizedKV", "quantize_kv"]


@dataclass
class QuantizedKV:
    """One ``PackedKV`` per layer."""

    layers: list[PackedKV]

    @property
    def nbytes(self) -> int:
        """Every byte stored (codes, scales, zeros, kept tokens, headers)."""
        return sum(p.nbytes for p in self.layers)

    def decode(self) -> KVList:
        """Per-layer ``(k, v)`` back in the input dtype and shape."""
        return [decode(p) for p in self.layers]


def quantize_kv(
    kv: KVList, spec: QuantSpec | None = None, *, key_rope: KeyRope | None = None
) -> QuantizedKV:
    """Encode each layer's ``(k, v)`` (``[B, H, T, D]``) with ``spec`` (default ``QuantSpec()``).
    ``key_rope``: the model's RoPE from the cartridge's first position (position 0), so keys are
    quantized before it as the KV store does (``KVContainer.build``); None: as given."""
    spec = QuantSpec() if spec is None else spec
    return QuantizedKV(
        [encode(k.detach().cpu(), v.detach().cpu(), spec, key_rope=key_rope) for k, v in kv]
    )
