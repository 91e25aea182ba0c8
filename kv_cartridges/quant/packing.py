"""Dense bit packing of integer codes, plain torch (the reference the numba kernels match).

Layout: each slab (one batch x kv-head) is one little-endian bitstream: code i occupies bits
``[i*b, (i+1)*b)``, bit 0 being the low bit of byte 0. Eight codes fill exactly ``b`` bytes, so
3-bit codes take 3 bytes per 8 and nothing is padded except the slab's last byte.
"""

from __future__ import annotations

import torch

__all__ = ["pack_bits", "packed_nbytes", "unpack_bits"]


def packed_nbytes(n_codes: int, bits: int) -> int:
    return (n_codes * bits + 7) // 8


def pack_bits(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 codes (S, N), each < 2**bits -> uint8 (S, ceil(N*bits/8))."""
    S, N = codes.shape
    assert codes.dtype == torch.uint8, f"codes must be uint8, got {codes.dtype}"
    N8 = -(-N // 8) * 8
    c = torch.zeros(S, N8, dtype=torch.int64)
    c[:, :N] = codes
    c = c.view(S, N8 // 8, 8)  # (S, N/8, 8)
    shifts = torch.arange(8, dtype=torch.int64) * bits  # (8,)
    acc = (c << shifts).sum(-1)  # (S, N/8): 8 codes in 8*bits <= 64 bits
    byte_shifts = torch.arange(bits, dtype=torch.int64) * 8  # (bits,)
    out = ((acc.unsqueeze(-1) >> byte_shifts) & 0xFF).to(torch.uint8)  # (S, N/8, bits)
    return out.reshape(S, N8 // 8 * bits)[:, : packed_nbytes(N, bits)].contiguous()


def unpack_bits(packed: torch.Tensor, bits: int, N: int) -> torch.Tensor:
    """uint8 (S, ceil(N*bits/8)) -> uint8 codes (S, N); inverse of :func:`pack_bits`."""
    S, nb = packed.shape
    assert nb == packed_nbytes(N, bits), f"{nb} bytes cannot hold {N} codes of {bits} bits"
    N8 = -(-N // 8) * 8
    p = torch.zeros(S, N8 // 8 * bits, dtype=torch.int64)
    p[:, :nb] = packed
    p = p.view(S, N8 // 8, bits)  # (S, N/8, bits)
    byte_shifts = torch.arange(bits, dtype=torch.int64) * 8  # (bits,)
    acc = (p << byte_shifts).sum(-1)  # (S, N/8)
    shifts = torch.arange(8, dtype=torch.int64) * bits  # (8,)
    c = (acc.unsqueeze(-1) >> shifts) & ((1 << bits) - 1)  # (S, N/8, 8)
    return c.reshape(S, N8)[:, :N].to(torch.uint8)
