"""The codec in plain eager torch: the reference the fused kernels must equal bit for bit.

Keys are grouped per channel along tokens, values per token along channels (KIVI). Each group
stores an fp16 zero point (its min, rounded down to fp16) and an fp16 scale (rounded up), so
every element decodes within half a step of its input: ``x ~ code * scale + zero``.
Codes are computed as ``floor((x - zero) * (1 / scale) + 0.5)`` clamped to ``[0, 2**b - 1]``,
all in float32, in the same order as ``fused.py``.
"""

from __future__ import annotations

import torch

from kv_cartridges.quant.errors import QuantError
from kv_cartridges.quant.packing import pack_bits, unpack_bits
from kv_cartridges.quant.rope import apply_rope
from kv_cartridges.quant.rotation import rotate, unrotate

__all__ = ["FP16_MAX", "decode_side", "encode_side", "f16_round", "group_params"]

FP16_MAX = 65504.0


def f16_round(x: torch.Tensor, up: bool) -> torch.Tensor:
    """float32 -> the nearest fp16 value below (or above) x, as float32 (|x| <= FP16_MAX)."""
    _, e = torch.frexp(x)  # |x| in [2**(e-1), 2**e)
    ulp = torch.ldexp(torch.ones_like(x), e.clamp(min=-13) - 11)  # fp16 spacing (2**-24 below)
    q = torch.ceil(x / ulp) if up else torch.floor(x / ulp)
    return q * ulp + 0.0  # + 0.0 turns -0.0 into +0.0


def group_params(mn: torch.Tensor, mx: torch.Tensor, bits: int) -> tuple[torch.Tensor, ...]:
    """Per-group min/max (float32) -> (scale, zero) as fp16-representable float32."""
    zero = f16_round(mn, up=False)
    scale = f16_round((mx - zero) / torch.tensor(float(2**bits - 1)), up=True)
    return scale, zero


def _codes(x, scale, zero, bits):
    inv = torch.where(scale > 0, 1.0 / scale, torch.zeros_like(scale))
    return torch.floor((x - zero) * inv + 0.5).clamp_(0, 2**bits - 1).to(torch.uint8)


def _check(x: torch.Tensor, name: str) -> None:
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise QuantError(f"{name} contains NaN/Inf at {bad} elements")
    big = int((x.abs() > FP16_MAX).sum())
    if big:
        raise QuantError(f"{name} has {big} elements beyond the fp16 range (|x| > {FP16_MAX:g})")


def _pad_to(x: torch.Tensor, dim: int, n: int) -> torch.Tensor:
    """Pad ``dim`` up to ``n`` by repeating its last slice (keeps every group's min and max)."""
    extra = n - x.shape[dim]
    if extra == 0:
        return x
    shape = [extra if d == dim else s for d, s in enumerate(x.shape)]
    return torch.cat([x, x.narrow(dim, x.shape[dim] - 1, 1).expand(*shape)], dim)


def _quantize_keys(x, bits, G):
    B, H, T, D = x.shape
    NG = -(-T // G)
    xg = _pad_to(x, 2, NG * G).view(B, H, NG, G, D)  # (B, H, NG, G, D): G tokens per group
    scale, zero = group_params(xg.amin(3), xg.amax(3), bits)  # (B, H, NG, D)
    codes = _codes(xg, scale.unsqueeze(3), zero.unsqueeze(3), bits)  # (B, H, NG, G, D)
    return codes.view(B, H, NG * G, D)[:, :, :T], scale, zero


def _quantize_values(x, bits, G):
    B, H, T, D = x.shape
    G = min(G, D)
    NG = -(-D // G)
    xg = _pad_to(x, 3, NG * G).view(B, H, T, NG, G)  # (B, H, T, NG, G): G channels per group
    scale, zero = group_params(xg.amin(4), xg.amax(4), bits)  # (B, H, T, NG)
    codes = _codes(xg, scale.unsqueeze(4), zero.unsqueeze(4), bits)  # (B, H, T, NG, G)
    return codes.view(B, H, T, NG * G)[..., :D], scale, zero


def encode_side(x, t0, t1, kind, bits, G, signs, name, rope=None):
    """float32 (B, H, T, D), tokens [t0, t1) -> packed uint8 (B, H, nbytes), scale, zero (fp16).
    ``rope``: (cos, sin) (Tq, R) tables the tokens are first turned by (``rope.apply_rope``)."""
    B, H = x.shape[:2]
    x = x[:, :, t0:t1]  # (B, H, Tq, D)
    _check(x, name)
    if rope is not None:
        x = x.clone()  # never the caller's tensor
        apply_rope(x, *rope)
        _check(x, f"{name} (before RoPE)")
    if signs is not None:
        x = rotate(x, signs)
        _check(x, f"{name} (rotated)")
    quantize = _quantize_keys if kind == "k" else _quantize_values
    codes, scale, zero = quantize(x, bits, G)
    packed = pack_bits(codes.reshape(B * H, -1), bits).view(B, H, -1)  # (B, H, nbytes)
    return packed, scale.to(torch.float16), zero.to(torch.float16)


def decode_side(packed, scale, zero, kind, bits, G, signs, out, t0, t1, rope=None):
    """Inverse of :func:`encode_side`: writes float32 tokens [t0, t1) of ``out`` (B, H, T, D),
    turned by ``rope`` (the forward tables) last."""
    B, H, _, D = out.shape
    Tq = t1 - t0
    codes = unpack_bits(packed.reshape(B * H, -1), bits, Tq * D).view(B, H, Tq, D).float()
    scale, zero = scale.float(), zero.float()
    if kind == "k":
        NG = scale.shape[2]
        c = _pad_to(codes, 2, NG * G).view(B, H, NG, G, D)  # (B, H, NG, G, D)
        x = (c * scale.unsqueeze(3) + zero.unsqueeze(3)).view(B, H, NG * G, D)[:, :, :Tq]
    else:
        G = min(G, D)
        NG = scale.shape[3]
        c = _pad_to(codes, 3, NG * G).view(B, H, Tq, NG, G)  # (B, H, Tq, NG, G)
        x = (c * scale.unsqueeze(4) + zero.unsqueeze(4)).view(B, H, Tq, NG * G)[..., :D]
    if signs is not None:
        x = unrotate(x, signs)
    out[:, :, t0:t1] = x
    if rope is not None:
        apply_rope(out[:, :, t0:t1], *rope)
