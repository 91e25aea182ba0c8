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
MAX_SEED = 2**63 - 1  # torch generators take 64-bit seeds


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
        # exact types: a spec travels as JSON, where 4.0 and true would pass a looser check
        for name in ("k_bits", "v_bits"):
            value = getattr(self, name)
            if not _is_int(value) or value not in BITS:
                raise QuantError(f"{name}={value!r:.40}: supported bit widths are {BITS}")
        if not _is_int(self.group_size) or self.group_size < 1:
            raise QuantError(f"group_size={self.group_size!r:.40}: must be a positive integer")
        for name in ("sink_tokens", "window_tokens"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise QuantError(f"{name}={value!r:.40}: must be a non-negative integer")
        for name in ("rotate_k", "rotate_v", "pre_rope_k"):
            if not isinstance(getattr(self, name), bool):
                raise QuantError(f"{name}={getattr(self, name)!r:.40}: must be true or false")
        if not _is_int(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise QuantError(f"seed={self.seed!r:.40}: must be an integer in [0, {MAX_SEED}]")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantSpec:
        if not isinstance(data, dict):
            raise QuantError(f"a QuantSpec is a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(map(str, set(data) - names))
        if unknown:
            raise QuantError(f"unknown QuantSpec fields {unknown}")
        return cls(**data)


@dataclass(frozen=True)
class LayerwiseSpec:
    """A base spec plus per-layer overrides (``{0: {"k_bits": 8}}``: layer 0's keys at 8 bits)."""

    base: QuantSpec = field(default_factory=QuantSpec)
    layers: dict[int, dict[str, Any]] = field(default_factory=dict)  # layer index -> changed fields

    def __post_init__(self) -> None:
        if not isinstance(self.base, QuantSpec):
            raise QuantError(f"base must be a QuantSpec, got {type(self.base).__name__}")
        for layer in self.layers:
            if not _is_int(layer) or layer < 0:
                raise QuantError(f"layer {layer!r:.40}: must be a non-negative integer")
            self.for_layer(layer)  # validates every override now, not at encode time

    def for_layer(self, layer: int) -> QuantSpec:
        changes = self.layers.get(layer)
        if not changes:
            return self.base
        if not isinstance(changes, dict):
            raise QuantError(f"layer {layer}: an override is an object of QuantSpec fields")
        try:
            return dataclasses.replace(self.base, **changes)
        except TypeError as exc:
            raise QuantError(f"layer {layer}: bad override {changes!r:.100}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict(), "layers": {str(i): c for i, c in self.layers.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerwiseSpec:
        if not isinstance(data, dict) or not isinstance(data.get("layers", {}), dict):
            raise QuantError('a LayerwiseSpec is {"base": {...}, "layers": {"<i>": {...}}}')
        unknown = sorted(map(str, set(data) - {"base", "layers"}))
        if unknown:
            raise QuantError(f"unknown LayerwiseSpec fields {unknown}")
        layers: dict[int, dict[str, Any]] = {}
        for i, changes in data.get("layers", {}).items():
            if not isinstance(i, str) or not (i.isascii() and i.isdigit()) or len(i) > 9:
                raise QuantError(f"layer key {i!r:.40}: a layer index")
            layers[int(i)] = changes
        return cls(QuantSpec.from_dict(data.get("base")), layers)


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
