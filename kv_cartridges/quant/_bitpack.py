"""numba bit packing of a run of codes into the LSB-first bitstream of ``packing.py``.

One loop per width so LLVM vectorizes it; runs that start mid-byte (D % 8 != 0) take the
bit-by-bit path into a zeroed stream.
"""

from __future__ import annotations

import numpy as np
from numba import njit

U8 = np.uint8


@njit(cache=True, inline="always")
def pack(c, n, dst, bit0, bits):
    """Codes ``c[:n]`` -> bits ``[bit0, bit0 + n*bits)`` of ``dst``."""
    if bit0 % 8 != 0 or n % 8 != 0:
        _pack_bitwise(c, n, dst, bit0, bits)
        return
    dst = dst[bit0 // 8 : (bit0 + n * bits) // 8]
    if bits == 8:
        for j in range(n):
            dst[j] = c[j]
    elif bits == 4:
        for j in range(n // 2):
            dst[j] = c[2 * j] | (c[2 * j + 1] << U8(4))
    elif bits == 2:
        for j in range(n // 4):
            a = c[4 * j] | (c[4 * j + 1] << U8(2))
            dst[j] = a | (c[4 * j + 2] << U8(4)) | (c[4 * j + 3] << U8(6))
    else:  # 3 bits: 8 codes -> 3 bytes
        for j in range(n // 8):
            i = 8 * j
            dst[3 * j] = c[i] | (c[i + 1] << U8(3)) | (c[i + 2] << U8(6))
            b1 = (c[i + 2] >> U8(2)) | (c[i + 3] << U8(1)) | (c[i + 4] << U8(4))
            dst[3 * j + 1] = b1 | (c[i + 5] << U8(7))
            dst[3 * j + 2] = (c[i + 5] >> U8(1)) | (c[i + 6] << U8(2)) | (c[i + 7] << U8(5))


@njit(cache=True, inline="always")
def unpack(src, bit0, bits, c, n):
    """Inverse of :func:`pack`: bits of ``src`` -> codes ``c[:n]``."""
    if bit0 % 8 != 0 or n % 8 != 0:
        _unpack_bitwise(src, bit0, bits, c, n)
        return
    src = src[bit0 // 8 : (bit0 + n * bits) // 8]
    if bits == 8:
        for j in range(n):
            c[j] = src[j]
    elif bits == 4:
        for j in range(n // 2):
            b = src[j]
            c[2 * j] = b & U8(15)
            c[2 * j + 1] = b >> U8(4)
    elif bits == 2:
        for j in range(n // 4):
            b = src[j]
            c[4 * j] = b & U8(3)
            c[4 * j + 1] = (b >> U8(2)) & U8(3)
            c[4 * j + 2] = (b >> U8(4)) & U8(3)
            c[4 * j + 3] = b >> U8(6)
    else:
        for j in range(n // 8):
            b0 = src[3 * j]
            b1 = src[3 * j + 1]
            b2 = src[3 * j + 2]
            c[8 * j] = b0 & U8(7)
            c[8 * j + 1] = (b0 >> U8(3)) & U8(7)
            c[8 * j + 2] = (b0 >> U8(6)) | ((b1 & U8(1)) << U8(2))
            c[8 * j + 3] = (b1 >> U8(1)) & U8(7)
            c[8 * j + 4] = (b1 >> U8(4)) & U8(7)
            c[8 * j + 5] = (b1 >> U8(7)) | ((b2 & U8(3)) << U8(1))
            c[8 * j + 6] = (b2 >> U8(2)) & U8(7)
            c[8 * j + 7] = b2 >> U8(5)


@njit(cache=True)
def _pack_bitwise(c, n, dst, bit0, bits):
    for d in range(n):
        p = bit0 + d * bits
        sh = p % 8
        w = np.uint32(c[d]) << np.uint32(sh)
        dst[p // 8] |= U8(w & np.uint32(255))
        if sh + bits > 8:
            dst[p // 8 + 1] |= U8(w >> np.uint32(8))


@njit(cache=True)
def _unpack_bitwise(src, bit0, bits, c, n):
    mask = np.uint32((1 << bits) - 1)
    for d in range(n):
        p = bit0 + d * bits
        sh = p % 8
        w = np.uint32(src[p // 8]) >> np.uint32(sh)
        if sh + bits > 8:
            w |= np.uint32(src[p // 8 + 1]) << np.uint32(8 - sh)
        c[d] = U8(w & mask)
