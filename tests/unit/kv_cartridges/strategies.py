"""Hypothesis strategies shared by the codec tests: small KV tensors of awkward shapes."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from kv_cartridges.quant import BITS, KeyRope, QuantSpec

DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@st.composite
def specs(draw: st.DrawFn) -> QuantSpec:
    return QuantSpec(
        k_bits=draw(st.sampled_from(BITS)),
        v_bits=draw(st.sampled_from(BITS)),
        group_size=draw(st.sampled_from((1, 3, 8, 16, 32, 64, 128))),
        rotate_k=draw(st.booleans()),
        rotate_v=draw(st.booleans()),
        sink_tokens=draw(st.integers(0, 5)),
        window_tokens=draw(st.integers(0, 9)),
        seed=draw(st.integers(0, 3)),
        pre_rope_k=draw(st.booleans()),
    )


@st.composite
def key_ropes(draw: st.DrawFn, D: int) -> KeyRope | None:
    """None, or RoPE over 1 to D/2 channel pairs: model-like frequencies (1 down to 1e-4) or
    arbitrary ones, from position 0 or far into a conversation."""
    if D < 2 or draw(st.booleans()):
        return None
    R = draw(st.integers(1, D // 2))
    if draw(st.booleans()):
        inv_freq = 1e4 ** -(torch.arange(R, dtype=torch.float32) / R)
    else:
        seed = draw(st.integers(0, 2**31 - 1))
        inv_freq = torch.rand(R, generator=torch.Generator().manual_seed(seed)) * 3
    return KeyRope(inv_freq, draw(st.sampled_from((0, 1, 37, 4096, 100_000))))


@st.composite
def kv_pairs(draw: st.DrawFn, dtypes=DTYPES) -> tuple[torch.Tensor, torch.Tensor]:
    """(k, v) [B, H, T, D]: any T (0 included), D even or odd, scales from 1e-3 to 300,
    optional outlier channels (as real keys have) and constant runs."""
    B = draw(st.integers(1, 2))
    H = draw(st.integers(1, 3))
    T = draw(st.integers(0, 150))
    D = draw(st.sampled_from((1, 3, 8, 12, 16, 24, 64)))
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from((1e-3, 1.0, 30.0, 300.0)))
    g = torch.Generator().manual_seed(seed)
    k, v = (torch.randn(B, H, T, D, generator=g) * scale for _ in range(2))
    if draw(st.booleans()) and T:
        k[..., 0] *= 8  # an outlier channel
        v[:, :, : max(1, T // 3)] = v[:, :, :1]  # a constant run of tokens
    return k.to(dtype), v.to(dtype)
