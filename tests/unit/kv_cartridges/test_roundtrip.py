"""decode(encode(x)) stays within half a quantization step of x, for any shape and dtype."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kv_cartridges.quant import QuantSpec, decode, encode
from tests.unit.kv_cartridges.helpers import assert_round_trip
from tests.unit.kv_cartridges.strategies import key_ropes, kv_pairs, specs


@settings(max_examples=60, deadline=None)
@given(kv=kv_pairs(), spec=specs(), data=st.data())
def test_round_trip_within_half_a_step(kv, spec, data):
    k, v = kv
    packed = encode(k, v, spec, key_rope=data.draw(key_ropes(k.shape[-1])))
    k2, v2 = decode(packed)
    assert_round_trip(packed, "k", k, k2)
    assert_round_trip(packed, "v", v, v2)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_error_shrinks_with_bits_and_codes_span_the_range(bits, impl):
    g = torch.Generator().manual_seed(bits)
    k, v = torch.randn(2, 2, 130, 64, generator=g), torch.randn(2, 2, 130, 64, generator=g)
    spec = QuantSpec(k_bits=bits, v_bits=bits, sink_tokens=0, rotate_k=False)
    # uniform noise of step s has variance s^2/12; a group of 64 normals spans about 4.8 sigma
    expected = (4.8 / (2**bits - 1)) ** 2 / 12
    for x, y in zip((k, v), decode(encode(k, v, spec, impl=impl), impl=impl), strict=True):
        rel = float(((x - y) ** 2).mean() / (x**2).mean())
        assert 0.3 * expected < rel < 1.5 * expected


def test_group_min_and_max_land_on_the_grid_ends():
    """min: the zero point (fp16, rounded down); max: zero + 15 * scale (scale rounded up, so
    off by at most 15 fp16 spacings of the scale, far inside half a step)."""
    x = torch.linspace(-3, 5, 64).repeat(1, 1, 2, 1)  # (1, 1, 2, 64): two value rows
    packed = encode(x, x, QuantSpec(v_bits=4, rotate_k=False, rotate_v=False, sink_tokens=0))
    _, v = decode(packed)
    scale = float(packed.tensors["v.scale"][0, 0, 0, 0])
    assert abs(float(v[0, 0, 0, 0]) + 3) <= 2**-9  # fp16 spacing at 3
    assert 0 <= float(v[0, 0, 0, -1]) - 5 <= 15 * 2**-11 * scale * 2
    assert scale == pytest.approx(8 / 15, rel=2**-10)


def test_tokens_not_a_multiple_of_the_group_and_tiny_caches():
    for T in (0, 1, 4, 5, 63, 65, 127):
        k = torch.randn(1, 2, T, 64)
        packed = encode(k, -k, QuantSpec(sink_tokens=2, window_tokens=3))
        k2, v2 = decode(packed)
        assert k2.shape == (1, 2, T, 64)
        assert_round_trip(packed, "k", k, k2)
        assert_round_trip(packed, "v", -k, v2)


def test_kept_tokens_are_stored_in_16_bit():
    k = torch.randn(1, 1, 40, 64, dtype=torch.float16)
    k2, _ = decode(encode(k, k, QuantSpec(sink_tokens=4, window_tokens=8)))
    assert torch.equal(k2[:, :, :4], k[:, :, :4])
    assert torch.equal(k2[:, :, -8:], k[:, :, -8:])
