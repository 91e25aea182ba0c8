"""Quantization specs: a :class:`QuantSpec` per layer; :class:`LayerwiseSpec` for per-layer bits.

``QuantSpec()`` is the recommended default and ``PRESETS`` names the other measured points (see
docs/kv-quantization.md for the measurements behind them). Specs are frozen and JSON-able
(``to_dict`` / ``from_dict``) so a packed cache carries the exact spec it was encoded with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from kv_cartridges.quant.errors import QuantError

__all__ = ["BITS", "PRESETS", "LayerwiseSpec", "QuantSpec", "spec_for_layer"]

BITS = (2, 3, 4, 8)  # code widths the packer supports


@dataclass(frozen=True)
class QuantSpec:
    k_bits: int = 4  # bits per key code: 2, 3, 4 or 8
    v_bits: int = 4  # bits per value code: 2, 3, 4 or 8
    group_size: int = 64  # keys: tokens per group (per channel); values: channels per group
    rotate_k: bool = True  # randomized Hadamard over head_dim before quantizing keys
    rotate_v: bool = True  # the same for values
    pre_rope_k: bool = True  # quantize keys before RoPE when encode is given the model's RoPE
    sink_tokens: int = 4  # first tokens (attention sinks) kept in 16-bit
    window_tokens: int = 0  # latest tokens kept in 16-bit
    seed: int = 0  # seed of the rotation's random signs (the signs themselves are stored)

    def __post_init__(self) -> None:
        for name in ("k_bits", "v_bits"):
            if getattr(self, name) not in BITS:
                raise QuantError(f"{name}={getattr(self, name)!r}: supported bit widths are {BITS}")
        if not isinstance(self.group_size, int) or self.group_size < 1:
            raise QuantError(f"group_size={self.group_size!r}: must be a positive integer")
        for name in ("sink_tokens", "window_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise QuantError(f"{name}={value!r}: must be a non-negative integer")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise QuantError(f"unknown QuantSpec fields {unknown}")
        return cls(**data)


@dataclass(frozen=True)
class LayerwiseSpec:
    """A base spec plus per-layer overrides (``{0: {"k_bits": 8}}``: layer 0's keys at 8 bits)."""

    base: QuantSpec = field(default_factory=QuantSpec)
    layers: dict[int, dict[str, Any]] = field(default_factory=dict)  # layer index -> changed fields

    def __post_init__(self) -> None:
        for layer in self.layers:
            self.for_layer(layer)  # validates every override now, not at encode time

    def for_layer(self, layer: int) -> QuantSpec:
        changes = self.layers.get(layer)
        if not changes:
            return self.base
        try:
            return dataclasses.replace(self.base, **changes)
        except TypeError as exc:
            raise QuantError(f"layer {layer}: bad override {changes!r}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict(), "layers": {str(i): c for i, c in self.layers.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerwiseSpec:
        layers = {int(i): dict(c) for i, c in data.get("layers", {}).items()}
        return cls(QuantSpec.from_dict(data["base"]), layers)


PRESETS: dict[str, QuantSpec] = {
    # 4.53 bits/elem on SmolLM2 (2,048 LoCoMo tokens): KL 0.0010 vs 0.0041 for plain 4-bit KIVI
    "default": QuantSpec(),
    # the same with no rotation of any kind: faster, less accurate (KL 0.0014)
    "fast": QuantSpec(rotate_k=False, rotate_v=False, pre_rope_k=False),
    # 3.53 bits/elem: the key rotations are what make 3 bits work (KL 0.005 vs 0.0125 without)
    "compact": QuantSpec(k_bits=3, v_bits=3),
    # 2.53 bits/elem (plain 2-bit KIVI: KL 0.21)
    "tiny": QuantSpec(k_bits=2, v_bits=2),
}


def spec_for_layer(spec: QuantSpec | LayerwiseSpec, layer: int) -> QuantSpec:
    """The spec one layer is encoded with."""
    return spec.for_layer(layer) if isinstance(spec, LayerwiseSpec) else spec
