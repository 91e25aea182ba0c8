"""Error bounds the round-trip tests check against, read from a packed layer's own scales."""

from __future__ import annotations

import torch

from kv_cartridges.quant import PackedKV, QuantSpec

# relative rounding of the decoded value when cast back to the input dtype
REL = {torch.float32: 2e-7, torch.float16: 2**-11, torch.bfloat16: 2**-8}


def steps(packed: PackedKV, side: str) -> torch.Tensor:
    """The quantization step of every quantized element, (B, H, Tq, D) float32."""
    T, D = packed.header["shape"][2:]
    Tq = T - packed.header["sink"] - packed.header["window"]
    G = QuantSpec.from_dict(packed.header["spec"]).group_size
    scale = packed.tensors[f"{side}.scale"].float()
    if side == "k":
        return scale.repeat_interleave(G, dim=2)[:, :, :Tq]  # (B, H, Tq, D)
    return scale.repeat_interleave(min(G, D), dim=3)[..., :D]  # (B, H, Tq, D)


def assert_round_trip(packed: PackedKV, side: str, x: torch.Tensor, y: torch.Tensor) -> None:
    """y = decode(encode(x)): quantized tokens within half a step of x (per element, or per
    row in L2 when that side was rotated, by the Hadamard rotation or, keys, by RoPE), kept
    tokens as exact as 16-bit storage allows."""
    assert y.shape == x.shape and y.dtype == x.dtype
    T = x.shape[2]
    S, W = packed.header["sink"], packed.header["window"]
    x, y, rel = x.float(), y.float(), REL[x.dtype]
    kept = torch.cat([x[:, :, :S], x[:, :, T - W :]], 2)
    kept_y = torch.cat([y[:, :, :S], y[:, :, T - W :]], 2)
    kept_tol = 0 if x.dtype != torch.float32 else kept.abs() * 2**-11 + 2**-24
    assert ((kept - kept_y).abs() <= kept_tol).all()
    xq, yq = x[:, :, S : T - W], y[:, :, S : T - W]
    half = 0.5 * steps(packed, side)
    rotated = f"{side}.signs" in packed.tensors or f"{side}.rope_freq" in packed.tensors
    if rotated:  # orthogonal: the L2 error of a row is that of its rotated codes
        err = (xq - yq).norm(dim=-1)
        bound = half.norm(dim=-1) * (1 + 1e-5) + xq.norm(dim=-1) * (rel + 1e-6) + 1e-30
    else:
        err = (xq - yq).abs()
        bound = half * (1 + 1e-5) + torch.maximum(xq.abs(), yq.abs()) * (rel + 1e-7) + 1e-30
    worst = (err - bound).max() if err.numel() else torch.tensor(-1.0)
    assert worst <= 0, f"{side}: error exceeds half a step by {float(worst):.3g}"
