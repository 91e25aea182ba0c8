"""The public surface of kv_cartridges.quant."""

from __future__ import annotations

import torch

import kv_cartridges.quant as quant
from kv_cartridges.quant import QuantSpec, decode, encode


def test_all_lists_exactly_the_public_names():
    public = {n for n in vars(quant) if not n.startswith("_")}
    modules = {
        "codec",
        "errors",
        "fused",
        "packed",
        "packing",
        "reference",
        "rope",
        "rotation",
        "spec",
    }
    assert set(quant.__all__) == public - modules


def test_recommended_default():
    spec = QuantSpec()
    assert (spec.k_bits, spec.v_bits, spec.group_size) == (4, 4, 64)
    assert (spec.rotate_k, spec.rotate_v, spec.pre_rope_k) == (True, True, True)
    assert (spec.sink_tokens, spec.window_tokens) == (4, 0)
    k = torch.randn(1, 3, 2048, 64)
    assert encode(k, k).bits_per_element < 4.6
    assert encode(k, k, quant.PRESETS["compact"]).bits_per_element < 3.6
    assert quant.PRESETS["default"] == spec


def test_reference_can_be_forced_and_decodes_the_same():
    k, v = torch.randn(2, 2, 33, 64), torch.randn(2, 2, 33, 64)
    packed = encode(k, v, impl="reference")
    for a, b in zip(decode(packed, impl="reference"), decode(packed), strict=True):
        assert torch.equal(a, b)
