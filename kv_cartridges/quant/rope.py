"""Pre-RoPE key quantization (KVQuant, arXiv 2401.18079, §3.2): keys are quantized *before* the
rotary position embedding and re-rotated on decode.

A cache holds keys after RoPE, which turns channel pair ``(i, i + R)`` by
``position * inv_freq[i]``. Across the tokens of one key group the high-frequency pairs spin
through every angle, so a per-channel group must span the pair's whole magnitude; before RoPE
the same channels are steady and their groups are narrow. ``encode`` undoes the rotation on the
quantized tokens, ``decode`` applies it again (on SmolLM2: key error -34%, next-token KL -20%;
docs/kv-quantization.md).

Correctness never depends on the frequencies being the model's: the pack stores ``inv_freq`` and
the first position, and decode applies exactly the inverse of what encode applied (an orthogonal
rotation per channel pair), so other frequencies or another pairing only change how well the
keys compress. The angles are computed in float64 and rounded to float32 once, so encode and
decode (here or on another machine) use the same cos/sin up to the last float32 ulp.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from kv_cartridges.quant.errors import QuantError

__all__ = ["MAX_POSITION", "KeyRope", "apply_rope", "check_pairs", "rope_tables", "rotate_keys"]

MAX_POSITION = 2**31 - 1  # first positions beyond this are refused (angles stay exact in float64)
_CACHED_ELEMENTS = 1 << 20  # tables up to this size are cached (4 MiB each), larger ones are not


@dataclass(frozen=True)
class KeyRope:
    """The rotary embedding a cache's keys carry: channel pair ``(i, i + R)`` of the token at
    position ``start + t`` is turned by ``(start + t) * inv_freq[i]`` (the ``rotate_half``
    convention of Llama-family models in transformers; ``R = len(inv_freq) <= head_dim / 2``,
    channels from ``2R`` on are not rotated, as with a partial rotary factor)."""

    inv_freq: torch.Tensor  # (R,) float32
    start: int = 0  # position of the cache's first token

    def __post_init__(self) -> None:
        f = self.inv_freq
        if not isinstance(f, torch.Tensor) or f.dim() != 1 or f.numel() == 0:
            raise QuantError("key_rope.inv_freq must be a non-empty 1-d tensor")
        if not bool(torch.isfinite(f).all()):
            raise QuantError("key_rope.inv_freq contains NaN/Inf")
        start = self.start
        if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start <= MAX_POSITION:
            raise QuantError(f"key_rope.start={start!r}: must be an integer in [0, {MAX_POSITION}]")
        object.__setattr__(self, "inv_freq", f.detach().to("cpu", torch.float32).contiguous())

    @property
    def pairs(self) -> int:
        return self.inv_freq.numel()


def rope_tables(
    rope: KeyRope, first: int, last: int, *, inverse: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` float32 ``(last - first, R)`` of tokens ``[first, last)``; for the inverse
    turn ``sin`` is negated (exactly), so both directions are :func:`apply_rope`."""
    key = (tuple(rope.inv_freq.tolist()), rope.start + first, rope.start + last)
    small = (last - first) * rope.pairs <= _CACHED_ELEMENTS
    cos, sin = _cached_tables(*key) if small else _tables(*key)
    if cos.shape != (last - first, rope.pairs):  # the kernels index these without bounds checks
        raise QuantError(f"RoPE tables {list(cos.shape)} for {last - first} tokens")
    return (cos, -sin) if inverse else (cos, sin)


def _tables(inv_freq: tuple[float, ...], begin: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
    positions = torch.arange(begin, end, dtype=torch.float64)
    angles = positions[:, None] * torch.tensor(inv_freq, dtype=torch.float64)[None, :]  # (T, R)
    return angles.cos().to(torch.float32), angles.sin().to(torch.float32)


_cached_tables = functools.lru_cache(maxsize=8)(_tables)  # every layer turns the same positions


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    """Turn float32 ``x`` ``[B, H, T, D]`` in place, token t's pair ``(i, i + R)`` by the angle
    whose cos/sin are ``cos[t, i]``/``sin[t, i]``: ``a' = a*c - b*s``, ``b' = b*c + a*s``, each
    product rounded to float32 on its own (the fused kernels do exactly these operations)."""
    R = cos.shape[-1]
    check_pairs(R, x.shape[-1])
    cos, sin = cos.to(x.device), sin.to(x.device)
    a, b = x[..., :R], x[..., R : 2 * R]
    a_sin = a * sin
    b_sin = b * sin
    a.mul_(cos).sub_(b_sin)
    b.mul_(cos).add_(a_sin)


def check_pairs(R: int, D: int) -> None:
    """RoPE over ``R`` channel pairs needs ``2R <= head_dim``: checked before any pair is indexed
    (the fused kernels do not check bounds)."""
    if not 1 <= R <= D // 2:
        raise QuantError(f"key_rope has {R} channel pairs; head_dim {D} holds at most {D // 2}")


def rotate_keys(x: torch.Tensor, rope: KeyRope, first: int, last: int, *, inverse: bool) -> None:
    """Turn tokens ``[first, last)`` of float32 ``x`` ``[B, H, T, D]`` in place: by the RoPE
    angles of their positions, or back (``inverse``, pre-RoPE keys from cached ones)."""
    if last > first:
        apply_rope(x[:, :, first:last], *rope_tables(rope, first, last, inverse=inverse))
