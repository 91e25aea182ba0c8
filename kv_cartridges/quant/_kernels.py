"""numba kernels behind ``fused.py``: rotate, quantize and pack a block of rows in one pass,
float32 math in the exact order of ``reference.py`` (no fastmath, no FMA contraction), so codes
and scales equal it bit for bit.

All arrays are flat (1-D views): ``x``/``out`` hold (BH, T, D) float32, ``codes`` (BH, nbytes)
uint8 (one bitstream per slab), key params (BH, NG, D), value params (BH, Tq, NGv), float32
holding fp16-exact values. Blocks: keys one group of G tokens, values ROWS tokens. Inner loops
run over contiguous runs with per-lane accumulators so LLVM vectorizes them. Compiled on first
use, cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from kv_cartridges.quant._bitpack import pack, unpack
from kv_cartridges.quant._hadamard import last_stage, load_rotated, stages

ZERO = np.float32(0.0)
HALF = np.float32(0.5)
ONE = np.float32(1.0)
FP16_MAX = np.float32(65504.0)
ROWS = 64  # value tokens per block


@njit(cache=True, inline="always")
def _f16_round(x, out, up, ulp_bits):
    """out = the fp16 value below (up=False) or above each x, as float32 (reference.f16_round):
    ``floor(x / ulp) * ulp`` with the fp16 spacing ``ulp`` taken from x's exponent bits."""
    xb = x.view(np.uint32)
    for j in range(x.shape[0]):
        e = xb[j] & np.uint32(0x7F800000)
        e = e if e > np.uint32(113 << 23) else np.uint32(113 << 23)  # fp16 subnormals: 2**-24
        ulp_bits[j] = e - np.uint32(10 << 23)
    ulp = ulp_bits.view(np.float32)
    for j in range(x.shape[0]):
        q = x[j] / ulp[j]  # exact: a power of two
        q = np.ceil(q) if up else np.floor(q)
        out[j] = q * ulp[j] + ZERO  # + 0 turns -0.0 into +0.0


@njit(cache=True, inline="always")
def _params(mn, mx, qmaxf, scale, zero, inv, tmp):
    """Per-group (scale, zero, 1/scale) from min/max arrays; tmp: float32/uint32 scratch."""
    n = mn.shape[0]
    _f16_round(mn, zero, False, tmp)
    t = np.empty(n, np.float32)
    for j in range(n):
        t[j] = (mx[j] - zero[j]) / qmaxf
    _f16_round(t, scale, True, tmp)
    for j in range(n):
        inv[j] = ONE / scale[j] if scale[j] > ZERO else ZERO


@njit(cache=True, inline="always")
def _code(v, zero, inv, qmaxf):
    y = (v - zero) * inv + HALF
    y = ZERO if y < ZERO else y
    y = qmaxf if y > qmaxf else y
    return np.uint8(y)  # truncation == floor for y >= 0


@njit(cache=True, inline="always")
def _block(x, o, n, D, rot, sf, P, c):
    """The block's n rows from flat x at o: a view, or a rotated copy."""
    xs = x[o : o + n * D]
    if not rot:
        return xs
    buf = np.empty(n * D, np.float32)
    load_rotated(xs, D, sf, P, c, buf)
    return buf


@njit(cache=True, inline="always")
def _turn_rows(r, n, D, rc, rs, R, t):
    """RoPE turn of n rows of flat r (row i is token t + i of the tables rc/rs, (Tq, R) flat):
    ``a' = a*c - b*s``, ``b' = b*c + a*s``, the operations of ``rope.apply_rope``."""
    for i in range(n):
        row = r[i * D : (i + 1) * D]
        cr = rc[(t + i) * R : (t + i + 1) * R]
        sr = rs[(t + i) * R : (t + i + 1) * R]
        for j in range(R):
            a, b = row[j], row[j + R]
            row[j] = a * cr[j] - b * sr[j]
            row[j + R] = b * cr[j] + a * sr[j]


@njit(cache=True, inline="always")
def _key_block(x, o, n, D, rot, sf, P, c, rc, rs, R, t):
    """A key block: as :func:`_block`, the rows first turned by RoPE when R > 0 (a copy)."""
    if R == 0:
        return _block(x, o, n, D, rot, sf, P, c)
    buf = x[o : o + n * D].copy()
    _turn_rows(buf, n, D, rc, rs, R, t)
    if rot:  # the butterflies in place: the same stages, in the same order, as load_rotated
        stages(buf, 1, P // 2)
        last_stage(buf, P, c, sf, True)
    return buf


@njit(cache=True)
def _pack_slabs(allc, codes, BH, bits):
    """Serial packing of every slab's codes (rows that do not start on a byte)."""
    n, nbytes = allc.shape[0] // max(BH, 1), codes.shape[0] // max(BH, 1)
    for bh in range(BH):
        pack(allc[bh * n : (bh + 1) * n], n, codes[bh * nbytes : (bh + 1) * nbytes], 0, bits)


@njit(cache=True)
def _unpack_slabs(codes, BH, n, bits):
    allc = np.empty(BH * n, np.uint8)
    nbytes = codes.shape[0] // max(BH, 1)
    for bh in range(BH):
        unpack(codes[bh * nbytes : (bh + 1) * nbytes], 0, bits, allc[bh * n : (bh + 1) * n], n)
    return allc


def _quant_keys(x, BH, T, D, t0, t1, G, bits, sf, rot, c, scale, zero, codes, rc, rs, R):
    NG = (t1 - t0 + G - 1) // G
    nbytes = ((t1 - t0) * D * bits + 7) // 8
    P = D & -D
    qmaxf = np.float32((1 << bits) - 1)
    bad = np.zeros(BH * NG, np.int64)
    whole = D % 8 == 0  # every block starts on a byte: pack in parallel, else afterwards
    allc = np.empty(0 if whole else BH * (t1 - t0) * D, np.uint8)
    for blk in prange(BH * NG):
        bh, g = blk // NG, blk % NG
        ta = t0 + g * G
        n = min(G, t1 - ta)
        src = _key_block(x, (bh * T + ta) * D, n, D, rot, sf, P, c, rc, rs, R, ta - t0)  # (n*D,)
        mn = src[:D].copy()
        mx = src[:D].copy()
        fine = np.ones(D, np.bool_)
        for i in range(n):
            r = src[i * D : (i + 1) * D]
            for d in range(D):
                v = r[d]
                fine[d] &= _ok(v)
                mn[d] = min(v, mn[d])
                mx[d] = max(v, mx[d])
        ok = True
        for d in range(D):
            ok &= fine[d]
        if not ok:
            bad[blk] = 1
            continue
        sc = scale[(bh * NG + g) * D : (bh * NG + g + 1) * D]
        zr = zero[(bh * NG + g) * D : (bh * NG + g + 1) * D]
        inv = np.empty(D, np.float32)
        _params(mn, mx, qmaxf, sc, zr, inv, np.empty(D, np.uint32))
        cb = np.empty(n * D, np.uint8)
        for i in range(n):
            r = src[i * D : (i + 1) * D]
            cr = cb[i * D : (i + 1) * D]
            for d in range(D):
                cr[d] = _code(r[d], zr[d], inv[d], qmaxf)
        if whole:
            pack(cb, n * D, codes[bh * nbytes : (bh + 1) * nbytes], g * G * D * bits, bits)
        else:
            allc[(bh * (t1 - t0) + g * G) * D : (bh * (t1 - t0) + g * G + n) * D] = cb
    if not whole:
        _pack_slabs(allc, codes, BH, bits)
    return bad.sum()


@njit(cache=True, inline="always")
def _ok(v):
    return abs(v) <= FP16_MAX  # False for NaN, +-Inf and values fp16 scales cannot hold


@njit(cache=True, inline="always")
def _row_min_max(r):
    """(min, max, all finite and in range) of a row: 8 register accumulators each (a lane
    array is 3x slower), the check folded with integer AND (a float sum chains on latency)."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = r[0]
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = r[0]
    ok = True
    n8 = r.shape[0] // 8 * 8
    for k in range(0, n8, 8):
        v0, v1, v2, v3 = r[k], r[k + 1], r[k + 2], r[k + 3]
        v4, v5, v6, v7 = r[k + 4], r[k + 5], r[k + 6], r[k + 7]
        a0, a1, a2, a3 = min(v0, a0), min(v1, a1), min(v2, a2), min(v3, a3)
        a4, a5, a6, a7 = min(v4, a4), min(v5, a5), min(v6, a6), min(v7, a7)
        b0, b1, b2, b3 = max(v0, b0), max(v1, b1), max(v2, b2), max(v3, b3)
        b4, b5, b6, b7 = max(v4, b4), max(v5, b5), max(v6, b6), max(v7, b7)
        ok4 = (_ok(v0) & _ok(v1)) & (_ok(v2) & _ok(v3))
        ok &= ok4 & ((_ok(v4) & _ok(v5)) & (_ok(v6) & _ok(v7)))
    for k in range(n8, r.shape[0]):
        v = r[k]
        a0, b0, ok = min(v, a0), max(v, b0), ok & _ok(v)
    mn = min(min(min(a0, a1), min(a2, a3)), min(min(a4, a5), min(a6, a7)))
    mx = max(max(max(b0, b1), max(b2, b3)), max(max(b4, b5), max(b6, b7)))
    return mn, mx, ok


def _quant_values(x, BH, T, D, t0, t1, G, bits, sf, rot, c, scale, zero, codes):
    Tq = t1 - t0
    NG = (D + G - 1) // G
    nbytes = (Tq * D * bits + 7) // 8
    P = D & -D
    qmaxf = np.float32((1 << bits) - 1)
    nblk = (Tq + ROWS - 1) // ROWS
    bad = np.zeros(BH * nblk, np.int64)
    whole = D % 8 == 0
    allc = np.empty(0 if whole else BH * Tq * D, np.uint8)
    for blk in prange(BH * nblk):
        bh = blk // nblk
        ra = (blk % nblk) * ROWS
        n = min(ROWS, Tq - ra)
        src = _block(x, (bh * T + t0 + ra) * D, n, D, rot, sf, P, c)  # (n*D,)
        cb = np.empty(n * D, np.uint8)
        sc = scale[(bh * Tq + ra) * NG : (bh * Tq + ra + n) * NG]
        zr = zero[(bh * Tq + ra) * NG : (bh * Tq + ra + n) * NG]
        mn = np.empty(n * NG, np.float32)
        mx = np.empty(n * NG, np.float32)
        ok = True
        for i in range(n):
            for gi in range(NG):
                r = src[i * D + gi * G : i * D + min(gi * G + G, D)]
                mn[i * NG + gi], mx[i * NG + gi], fine = _row_min_max(r)
                ok &= fine
        inv = np.empty(n * NG, np.float32)
        _params(mn, mx, qmaxf, sc, zr, inv, np.empty(n * NG, np.uint32))
        for i in range(n):
            for gi in range(NG):
                da, db = gi * G, min(gi * G + G, D)
                r = src[i * D + da : i * D + db]
                cr = cb[i * D + da : i * D + db]
                z, iv = zr[i * NG + gi], inv[i * NG + gi]
                for d in range(db - da):
                    cr[d] = _code(r[d], z, iv, qmaxf)
        if not ok:
            bad[blk] = 1
            continue
        if whole:
            pack(cb, n * D, codes[bh * nbytes : (bh + 1) * nbytes], ra * D * bits, bits)
        else:
            allc[(bh * Tq + ra) * D : (bh * Tq + ra + n) * D] = cb
    if not whole:
        _pack_slabs(allc, codes, BH, bits)
    return bad.sum()


def _dequant_keys(codes, scale, zero, G, bits, sf, rot, c, out, BH, T, D, t0, t1, rc, rs, R):
    NG = (t1 - t0 + G - 1) // G
    nbytes = ((t1 - t0) * D * bits + 7) // 8
    P = D & -D
    whole = D % 8 == 0
    allc = np.empty(0, np.uint8) if whole else _unpack_slabs(codes, BH, (t1 - t0) * D, bits)
    for blk in prange(BH * NG):
        bh, g = blk // NG, blk % NG
        ta = t0 + g * G
        n = min(G, t1 - ta)
        if whole:
            cb = np.empty(n * D, np.uint8)
            unpack(codes[bh * nbytes : (bh + 1) * nbytes], g * G * D * bits, bits, cb, n * D)
        else:
            cb = allc[(bh * (t1 - t0) + g * G) * D : (bh * (t1 - t0) + g * G + n) * D]
        sc = scale[(bh * NG + g) * D : (bh * NG + g + 1) * D]
        zr = zero[(bh * NG + g) * D : (bh * NG + g + 1) * D]
        ob = out[(bh * T + ta) * D : (bh * T + ta + n) * D]
        for i in range(n):
            cr = cb[i * D : (i + 1) * D]
            orow = ob[i * D : (i + 1) * D]
            if rot:  # unrotate(y) = H(signs * y) * c: the signs go in here
                for d in range(D):
                    orow[d] = (np.float32(cr[d]) * sc[d] + zr[d]) * sf[d]
            else:
                for d in range(D):
                    orow[d] = np.float32(cr[d]) * sc[d] + zr[d]
        if rot:
            stages(ob, 1, P // 2)
            last_stage(ob, P, c, sf, False)
        if R > 0:
            _turn_rows(ob, n, D, rc, rs, R, ta - t0)


def _dequant_values(codes, scale, zero, G, bits, sf, rot, c, out, BH, T, D, t0, t1):
    Tq = t1 - t0
    NG = (D + G - 1) // G
    nbytes = (Tq * D * bits + 7) // 8
    P = D & -D
    nblk = (Tq + ROWS - 1) // ROWS
    whole = D % 8 == 0
    allc = np.empty(0, np.uint8) if whole else _unpack_slabs(codes, BH, Tq * D, bits)
    for blk in prange(BH * nblk):
        bh = blk // nblk
        ra = (blk % nblk) * ROWS
        n = min(ROWS, Tq - ra)
        if whole:
            cb = np.empty(n * D, np.uint8)
            unpack(codes[bh * nbytes : (bh + 1) * nbytes], ra * D * bits, bits, cb, n * D)
        else:
            cb = allc[(bh * Tq + ra) * D : (bh * Tq + ra + n) * D]
        sc = scale[(bh * Tq + ra) * NG : (bh * Tq + ra + n) * NG]
        zr = zero[(bh * Tq + ra) * NG : (bh * Tq + ra + n) * NG]
        ob = out[(bh * T + t0 + ra) * D : (bh * T + t0 + ra + n) * D]
        for i in range(n):
            for gi in range(NG):
                da, db = gi * G, min(gi * G + G, D)
                s, z = sc[i * NG + gi], zr[i * NG + gi]
                cr = cb[i * D + da : i * D + db]
                orow = ob[i * D + da : i * D + db]
                if rot:
                    sg = sf[da:db]
                    for d in range(db - da):
                        orow[d] = (np.float32(cr[d]) * s + z) * sg[d]
                else:
                    for d in range(db - da):
                        orow[d] = np.float32(cr[d]) * s + z
        if rot:
            stages(ob, 1, P // 2)
            last_stage(ob, P, c, sf, False)


quant_keys = njit(parallel=True, cache=True)(_quant_keys)
quant_values = njit(parallel=True, cache=True)(_quant_values)
dequant_keys = njit(parallel=True, cache=True)(_dequant_keys)
dequant_values = njit(parallel=True, cache=True)(_dequant_values)
