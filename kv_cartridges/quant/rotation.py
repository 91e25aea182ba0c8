"""Randomized Hadamard rotation over head_dim (QuaRot / TurboQuant style), plain torch.

``rotate(x) = signs * H_P(x) / sqrt(P)`` applied blockwise over the last dim, with P the largest
power of two dividing D (D = 64 or 128: one block), and ``unrotate(y) = H_P(signs * y) / sqrt(P)``
its exact inverse (H symmetric, H H = P I). The signs sit outside the butterflies so the kernels
fold them into passes they make anyway. The
butterflies run in a fixed order in float32 so the numba kernels in ``fused.py`` reproduce them
bit for bit. The ±1 signs are drawn once from ``seed`` and stored with the cache, so decoding never
depends on a random generator.
"""

from __future__ import annotations

import functools
import math

import torch

__all__ = ["block_size", "hadamard_scale", "random_signs", "rotate", "unrotate"]


def block_size(D: int) -> int:
    """Largest power of two dividing D: the Hadamard block (D itself for 64, 128, 256)."""
    return D & -D


@functools.cache
def hadamard_scale(D: int) -> float:
    """The float32 normaliser 1/sqrt(P) both implementations multiply by."""
    return float(torch.tensor(1.0 / math.sqrt(block_size(D)), dtype=torch.float32))


def random_signs(D: int, seed: int) -> torch.Tensor:
    """(D,) int8 of +-1, a fresh tensor each call (drawn once per (D, seed))."""
    return _random_signs(D, seed).clone()


@functools.lru_cache(maxsize=64)  # bounded: seeds come from specs that clients send
def _random_signs(D: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (D,), generator=g, dtype=torch.int8) * 2 - 1  # (D,)


def _butterflies(x: torch.Tensor) -> torch.Tensor:
    *lead, D = x.shape
    P = block_size(D)
    h = 1
    while h < P:
        y = x.reshape(*lead, D // (2 * h), 2, h)  # (..., D/2h, 2, h): pairs (j, j+h)
        a, b = y[..., 0, :], y[..., 1, :]
        x = torch.stack((a + b, a - b), dim=-2).reshape(*lead, D)  # (..., D)
        h *= 2
    return x


def rotate(x: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """float32 (..., D) -> float32 (..., D), orthogonal."""
    D = x.shape[-1]
    return (_butterflies(x) * hadamard_scale(D)) * signs.to(torch.float32)


def unrotate(y: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rotate`."""
    D = y.shape[-1]
    return _butterflies(y * signs.to(torch.float32)) * hadamard_scale(D)
