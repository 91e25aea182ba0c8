"""``PackedKV``: one layer's quantized K and V as named tensors plus a JSON-able header.

Tensors, for each side ``s`` in ``k``, ``v`` (B, H, T, D = batch, kv-heads, tokens, head dim;
S, W = kept sink / window tokens; Tq = T - S - W quantized tokens; G = group size)::

    s.codes   uint8        (B, H, ceil(Tq*D*bits/8))  bit-packed codes, token-major per slab
    s.scale   float16      k: (B, H, ceil(Tq/G), D)   v: (B, H, Tq, ceil(D/G))
    s.zero    float16      same shape as s.scale (the group's rounded-down min)
    s.sink    16-bit       (B, H, S, D)   only when S > 0 (bfloat16 if the input was, else float16)
    s.window  16-bit       (B, H, W, D)   only when W > 0
    s.signs   int8         (D,)           only when that side is rotated
    k.rope_freq float32    (R,)           only when keys were quantized before RoPE (version 2)

Nothing is pickled: ``to_flat``/``from_flat`` prefix the names (one file can hold many layers) and
``to_bytes``/``from_bytes`` write a single safetensors blob with the header in its metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from kv_cartridges.quant.errors import QuantError

__all__ = [
    "FORMAT",
    "HEADER_KEY",
    "VERSION",
    "VERSIONS",
    "VERSION_KEY_ROPE",
    "PackedKV",
    "loads_strict",
]

FORMAT = "memsvc.kvquant"
VERSION = 1
VERSION_KEY_ROPE = 2  # a pack whose keys were quantized before RoPE (header "key_rope")
VERSIONS = (VERSION, VERSION_KEY_ROPE)
HEADER_KEY = "kvquant"  # safetensors metadata key holding the JSON header


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (numbers must be finite)")


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that refuses ``NaN``/``Infinity``, which standard JSON does not have."""
    return json.loads(text, parse_constant=_no_constant)


@dataclass
class PackedKV:
    tensors: dict[str, torch.Tensor]  # flat names -> tensors (see module docstring)
    header: dict[str, Any]  # format, version, shape, dtype, spec, kept token counts

    @property
    def header_json(self) -> str:
        return json.dumps(self.header, sort_keys=True, separators=(",", ":"))

    @property
    def nbytes(self) -> int:
        """Every byte stored: all tensor data plus the JSON header."""
        data = sum(t.numel() * t.element_size() for t in self.tensors.values())
        return data + len(self.header_json.encode())

    @property
    def numel(self) -> int:
        """Elements of K and V together (the denominator of bits per element)."""
        B, H, T, D = self.header["shape"]
        return 2 * B * H * T * D

    @property
    def bits_per_element(self) -> float:
        return 8 * self.nbytes / max(self.numel, 1)

    def to_flat(self, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors renamed ``prefix + name`` (e.g. ``"layers.3."``) and the header."""
        return {prefix + n: t for n, t in self.tensors.items()}, self.header

    @classmethod
    def from_flat(
        cls, tensors: dict[str, torch.Tensor], header: dict[str, Any], prefix: str = ""
    ) -> PackedKV:
        """The layer under ``prefix`` of a flat dict (other prefixes are ignored)."""
        if header.get("format") != FORMAT or header.get("version") not in VERSIONS:
            raise QuantError(
                f"not a {FORMAT} header of version {VERSIONS}: format={header.get('format')!r}, "
                f"version={header.get('version')!r}"
            )
        own = {n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)}
        return cls(own, header)

    def to_bytes(self) -> bytes:
        return st_save(
            {n: t.contiguous() for n, t in self.tensors.items()},
            metadata={HEADER_KEY: self.header_json},
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> PackedKV:
        try:
            n_header = int.from_bytes(blob[:8], "little")
            meta = json.loads(blob[8 : 8 + n_header]).get("__metadata__", {})
            tensors = st_load(blob)
        except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
            raise QuantError(f"not a safetensors blob: {exc}") from exc
        if HEADER_KEY not in meta:
            raise QuantError(f"safetensors metadata has no {HEADER_KEY!r} header")
        try:
            header = loads_strict(meta[HEADER_KEY])
        except ValueError as exc:
            raise QuantError(f"kvquant header: {exc}") from exc
        return cls.from_flat(tensors, header)
