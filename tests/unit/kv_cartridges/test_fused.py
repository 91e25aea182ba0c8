"""The numba kernels equal the plain-torch reference bit for bit."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kv_cartridges.quant import QuantError, QuantSpec, decode, encode, fused_available
from tests.unit.kv_cartridges.strategies import key_ropes, kv_pairs, specs

pytestmark = pytest.mark.skipif(not fused_available(), reason="numba is not installed")
BITS_VIEW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def assert_bits_equal(a: torch.Tensor, b: torch.Tensor, name: str) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape, name
    view = BITS_VIEW.get(a.dtype)
    assert torch.equal(a.view(view), b.view(view)) if view else torch.equal(a, b), name


def assert_same(k: torch.Tensor, v: torch.Tensor, spec: QuantSpec, key_rope=None) -> None:
    try:
        ref = encode(k, v, spec, impl="reference", key_rope=key_rope)
    except QuantError as exc:  # then the kernels refuse it with the same message
        with pytest.raises(QuantError, match=re.escape(str(exc))):
            encode(k, v, spec, impl="fused", key_rope=key_rope)
        return
    fast = encode(k, v, spec, impl="fused", key_rope=key_rope)
    assert ref.header == fast.header
    assert ref.tensors.keys() == fast.tensors.keys()
    for name in ref.tensors:
        assert_bits_equal(ref.tensors[name], fast.tensors[name], name)
    for got, want in zip(decode(fast, impl="fused"), decode(fast, impl="reference"), strict=True):
        assert_bits_equal(got, want, "decoded")


@settings(max_examples=60, deadline=None)
@given(kv=kv_pairs(), spec=specs(), data=st.data())
def test_fused_equals_reference(kv, spec, data):
    assert_same(*kv, spec, data.draw(key_ropes(kv[0].shape[-1])))


@pytest.mark.parametrize(
    "make",
    [
        lambda s: torch.zeros(s),
        lambda s: -torch.zeros(s),  # -0.0 everywhere
        lambda s: torch.full(s, 3.14159),  # constant groups: zero scale
        lambda s: torch.randn(s) * 1e-7,  # fp16 subnormal scales and zero points
        lambda s: torch.randn(s) * 1e-41,  # float32 subnormal input
        lambda s: torch.randn(s).clamp(-1, 1) * 65504,  # the ends of the fp16 range
        lambda s: torch.randint(-8, 8, s).float() / 4,  # many exact ties at the half step
    ],
)
@pytest.mark.parametrize("rotate", [False, True])
def test_fused_equals_reference_on_special_values(make, rotate):
    torch.manual_seed(0)
    x = make((2, 3, 77, 64))
    for bits in (2, 3, 4, 8):
        spec = QuantSpec(k_bits=bits, v_bits=bits, rotate_k=rotate, rotate_v=rotate)
        assert_same(x, x.flip(2), spec)


@pytest.mark.parametrize("rotate", [False, True])
def test_fused_equals_reference_with_keys_before_rope(rotate):
    """The kernels turn key rows by RoPE themselves (before the butterflies on encode, after
    them on decode): bit for bit the reference's torch turn, on model-like frequencies."""
    from kv_cartridges.quant import KeyRope

    g = torch.Generator().manual_seed(3)
    k, v = torch.randn(2, 3, 300, 64, generator=g) * 3, torch.randn(2, 3, 300, 64, generator=g)
    rope = KeyRope(1e5 ** -(torch.arange(32, dtype=torch.float32) / 32), start=4096)
    spec = QuantSpec(rotate_k=rotate, rotate_v=rotate, sink_tokens=4, window_tokens=5)
    assert_same(k, v, spec, rope)
    partial = KeyRope(rope.inv_freq[:8], start=0)  # a partial rotary factor: 8 of 32 pairs
    assert_same(k, v, spec, partial)
