"""Dense bit packing: exact round trip, exact size, and the documented bit order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kv_cartridges.quant import BITS, fused_available
from kv_cartridges.quant.packing import pack_bits, packed_nbytes, unpack_bits


@settings(max_examples=80, deadline=None)
@given(bits=st.sampled_from(BITS), S=st.integers(1, 3), N=st.integers(0, 300), seed=st.integers())
def test_pack_round_trip_is_exact_and_dense(bits, S, N, seed):
    g = torch.Generator().manual_seed(seed % 2**31)
    codes = torch.randint(0, 2**bits, (S, N), generator=g, dtype=torch.uint8)
    packed = pack_bits(codes, bits)
    assert packed.shape == (S, (N * bits + 7) // 8) == (S, packed_nbytes(N, bits))
    assert torch.equal(unpack_bits(packed, bits, N), codes)


def _stream(codes: list[int], bits: int, bit0: int = 0) -> bytes:
    """The documented layout: code i at bits [bit0 + i*bits, ...), little-endian."""
    value = sum(c << (bit0 + i * bits) for i, c in enumerate(codes))
    return value.to_bytes((bit0 + len(codes) * bits + 7) // 8, "little")


def test_bit_order_is_little_endian_lsb_first():
    codes = [1, 2, 3, 4, 5, 6, 7, 0]
    packed = pack_bits(torch.tensor([codes], dtype=torch.uint8), 3)
    assert bytes(packed[0].tolist()) == _stream(codes, 3)
    assert pack_bits(torch.tensor([[0x1, 0xF]], dtype=torch.uint8), 4).tolist() == [[0xF1]]


@pytest.mark.skipif(not fused_available(), reason="numba is not installed")
@settings(max_examples=80, deadline=None)
@given(
    bits=st.sampled_from(BITS),
    n=st.integers(1, 200),
    bit0=st.integers(0, 64),
    seed=st.integers(0, 2**31),
)
def test_numba_packer_matches_the_layout(bits, n, bit0, seed):
    from kv_cartridges.quant._bitpack import pack, unpack

    codes = np.random.default_rng(seed).integers(0, 2**bits, n, dtype=np.uint8)
    want = _stream(codes.tolist(), bits, bit0)
    dst = np.zeros(len(want), np.uint8)
    pack(codes, n, dst, bit0, bits)
    assert dst.tobytes() == want
    back = np.empty(n, np.uint8)
    unpack(dst, bit0, bits, back, n)
    assert np.array_equal(back, codes)
