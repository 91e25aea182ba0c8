"""KV-cache quantization: KIVI-layout asymmetric uniform codes at 2/3/4/8 bits, bit-packed.

    from kv_cartridges.quant import QuantSpec, encode, decode

    packed = encode(k, v, QuantSpec())  # k, v: [batch, kv_heads, tokens, head_dim]
    k2, v2 = decode(packed)             # same shape and dtype, within half a step per element

``encode`` runs the fused numba kernels on the CPU when numba is installed and falls back to the
plain-torch reference otherwise (``impl="reference"`` forces it). See docs/kv-quantization.md.
"""

from kv_cartridges.quant.codec import Impl, decode, encode, expected_tensors, key_rope_of
from kv_cartridges.quant.errors import QuantError
from kv_cartridges.quant.fused import available as fused_available
from kv_cartridges.quant.fused import warm_up
from kv_cartridges.quant.packed import PackedKV
from kv_cartridges.quant.rope import KeyRope
from kv_cartridges.quant.spec import BITS, PRESETS, LayerwiseSpec, QuantSpec, spec_for_layer

__all__ = [
    "BITS",
    "PRESETS",
    "Impl",
    "KeyRope",
    "LayerwiseSpec",
    "PackedKV",
    "QuantError",
    "QuantSpec",
    "decode",
    "encode",
    "expected_tensors",
    "fused_available",
    "key_rope_of",
    "spec_for_layer",
    "warm_up",
]
