"""The fast path: numba kernels (``_kernels.py``) that rotate, quantize and bit-pack a group of
rows in one pass, in parallel over groups, equal to ``reference.py`` bit for bit.

Same two entry points as the reference (``encode_side``, ``decode_side``); ``codec`` picks this
module when numba imports and the tensors are on the CPU. numba is imported, and the kernels
compiled (or loaded from numba's cache), on first use.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import time
from types import ModuleType

import numpy as np
import torch

from kv_cartridges.quant import reference
from kv_cartridges.quant.errors import QuantError
from kv_cartridges.quant.packing import packed_nbytes
from kv_cartridges.quant.rope import apply_rope, check_pairs
from kv_cartridges.quant.rotation import hadamard_scale, rotate

__all__ = ["available", "decode_side", "encode_side", "warm_up"]

log = logging.getLogger(__name__)


@functools.cache
def available() -> bool:
    return importlib.util.find_spec("numba") is not None


@functools.cache
def _kernels() -> ModuleType:
    start = time.perf_counter()
    from kv_cartridges.quant import _kernels as k

    log.debug("numba kernels imported in %.2fs", time.perf_counter() - start)
    return k


def warm_up() -> None:
    """Compile (or load from cache) every kernel once, outside anything being timed."""
    from kv_cartridges.quant.codec import decode, encode
    from kv_cartridges.quant.spec import QuantSpec

    x = torch.zeros(1, 1, 40, 16)
    for D in (16, 12):  # rows on whole bytes, and not
        for rot in (False, True):
            spec = QuantSpec(group_size=16, rotate_k=rot, rotate_v=rot, sink_tokens=1)
            decode(encode(x[..., :D], x[..., :D], spec, impl="fused"), impl="fused")


def _shapes(kind: str, BH: int, Tq: int, D: int, G: int) -> tuple[int, tuple[int, int, int]]:
    if kind == "k":
        return G, (BH, -(-Tq // G), D)  # (BH, NG, D): per channel, G tokens per group
    G = min(G, D)
    return G, (BH, Tq, -(-D // G))  # (BH, Tq, NGv): per token, G channels per group


@functools.lru_cache(maxsize=64)
def _signs_np(key: bytes) -> np.ndarray:
    return np.frombuffer(key, np.int8).astype(np.float32)


def _signs(signs: torch.Tensor | None, D: int) -> tuple[np.ndarray, bool, np.float32]:
    """(signs as float32, rotate?, 1/sqrt(P)) as the kernels take them."""
    c = np.float32(hadamard_scale(D))
    if signs is None:
        return _signs_np(b"\x01" * D), False, c
    return _signs_np(signs.to(torch.int8).numpy().tobytes()), True, c


_NO_ROPE = (np.empty(0, np.float32), np.empty(0, np.float32), 0)


def _rope(
    rope: tuple[torch.Tensor, torch.Tensor] | None, Tq: int, D: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(cos, sin) (Tq, R) tables as the kernels take them: flat float32 and R (0: none). The
    kernels index them without bounds checks, so their shapes are checked here."""
    if rope is None:
        return _NO_ROPE
    cos, sin = (t.to(torch.float32).contiguous() for t in rope)
    R = cos.shape[-1] if cos.dim() == 2 else -1
    check_pairs(R, D)
    if cos.shape != (Tq, R) or sin.shape != (Tq, R):
        raise QuantError(f"RoPE tables {list(cos.shape)}/{list(sin.shape)} for {Tq} tokens")
    return cos.reshape(-1).numpy(), sin.reshape(-1).numpy(), R


def encode_side(x, t0, t1, kind, bits, G, signs, name, rope=None):
    """float32 (B, H, T, D), tokens [t0, t1) -> packed uint8 (B, H, nbytes), scale, zero (fp16).
    ``rope`` (keys only): (cos, sin) tables the tokens are turned by first (``reference``)."""
    k = _kernels()
    B, H, T, D = x.shape
    BH, Tq = B * H, t1 - t0
    G, pshape = _shapes(kind, BH, Tq, D, G)
    scale = np.empty(pshape, np.float32)
    zero = np.empty(pshape, np.float32)
    nbytes = packed_nbytes(Tq * D, bits)
    codes = np.empty((BH, nbytes), np.uint8) if D % 8 == 0 else np.zeros((BH, nbytes), np.uint8)
    sgn, rot, c = _signs(signs, D)
    xn = x.detach().reshape(-1).numpy()  # (BH*T*D,), a view
    args = (xn, BH, T, D, t0, t1, G, bits, sgn, rot, c, scale.reshape(-1), zero.reshape(-1),
            codes.reshape(-1))  # fmt: skip
    if k.quant_keys(*args, *_rope(rope, Tq, D)) if kind == "k" else k.quant_values(*args):
        _raise_bad(x[:, :, t0:t1], signs, name, rope)
    return (
        torch.from_numpy(codes).view(B, H, nbytes),
        torch.from_numpy(scale).view(B, H, *pshape[1:]).to(torch.float16),
        torch.from_numpy(zero).view(B, H, *pshape[1:]).to(torch.float16),
    )


def _raise_bad(x: torch.Tensor, signs: torch.Tensor | None, name: str, rope=None) -> None:
    """The kernel found a bad group: let the reference checks name the problem."""
    reference._check(x, name)
    if rope is not None:
        x = x.clone()
        apply_rope(x, *rope)
        reference._check(x, f"{name} (before RoPE)")
    if signs is not None:
        reference._check(rotate(x, signs), f"{name} (rotated)")
    raise QuantError(f"{name} cannot be quantized (non-finite or out-of-range group)")


def decode_side(packed, scale, zero, kind, bits, G, signs, out, t0, t1, rope=None):
    """Inverse of :func:`encode_side`: writes float32 tokens [t0, t1) of ``out`` (B, H, T, D),
    turned by ``rope`` (keys only; the forward tables) last."""
    k = _kernels()
    B, H, T, D = out.shape
    BH = B * H
    G, _ = _shapes(kind, BH, t1 - t0, D, G)
    sgn, rot, c = _signs(signs, D)
    args = (
        packed.reshape(-1).numpy(), scale.float().reshape(-1).numpy(),
        zero.float().reshape(-1).numpy(), G, bits, sgn, rot, c, out.view(-1).numpy(),
        BH, T, D, t0, t1,
    )  # fmt: skip
    if kind == "k":
        k.dequant_keys(*args, *_rope(rope, t1 - t0, D))
    else:
        k.dequant_values(*args)
