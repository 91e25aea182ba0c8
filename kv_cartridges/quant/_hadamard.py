"""numba Hadamard rotation for ``_kernels.py``: the same butterflies, in the same order, as
``rotation.py``, on flat float32 blocks of whole rows (``rotate = signs * H(x) * c``).

The first stage is fused into the copy that loads a block, and ``c`` (and the signs) into the
last stage, so a rotation costs log2(P) passes over an L1-sized block.
"""

from __future__ import annotations

from numba import njit

__all__ = ["last_stage", "load_rotated", "stages"]


@njit(cache=True, inline="always")
def stages(r, h0, hend):
    """In-place Hadamard butterflies h = h0, 2*h0, ... < hend over the flat block r (rows whose
    length is a multiple of 2*h). The loop shapes are the ones LLVM vectorizes best."""
    N = r.shape[0]
    h = h0
    while h < hend:
        if h == 1:
            for k in range(N // 2):
                a, b = r[2 * k], r[2 * k + 1]
                r[2 * k], r[2 * k + 1] = a + b, a - b
        elif h == 2:
            for k in range(N // 4):
                q = 4 * k
                a0, a1, b0, b1 = r[q], r[q + 1], r[q + 2], r[q + 3]
                r[q], r[q + 1], r[q + 2], r[q + 3] = a0 + b0, a1 + b1, a0 - b0, a1 - b1
        elif h == 4:
            for k in range(N // 8):
                q = 8 * k
                a0, a1, a2, a3 = r[q], r[q + 1], r[q + 2], r[q + 3]
                b0, b1, b2, b3 = r[q + 4], r[q + 5], r[q + 6], r[q + 7]
                r[q], r[q + 1], r[q + 2], r[q + 3] = a0 + b0, a1 + b1, a2 + b2, a3 + b3
                r[q + 4], r[q + 5], r[q + 6], r[q + 7] = a0 - b0, a1 - b1, a2 - b2, a3 - b3
        else:
            for base in range(0, N, 2 * h):
                lo = r[base : base + h]
                hi = r[base + h : base + 2 * h]
                for j in range(h):
                    a, b = lo[j], hi[j]
                    lo[j], hi[j] = a + b, a - b
        h *= 2


@njit(cache=True, inline="always")
def last_stage(r, P, c, sf, signs):
    """Stage h = P/2 times c, then times the signs when ``signs``: one pass instead of three."""
    N, D = r.shape[0], sf.shape[0]
    if P < 16:  # tiny blocks: the plain stage, then a scaling pass
        if P >= 2:
            stages(r, P // 2, P)
        for i in range(N // D):
            rr = r[i * D : (i + 1) * D]
            for d in range(D):
                rr[d] = (rr[d] * c) * sf[d] if signs else rr[d] * c
        return
    h = P // 2
    for base in range(0, N, P):
        lo = r[base : base + h]
        hi = r[base + h : base + P]
        if signs:
            slo = sf[base % D : base % D + h]
            shi = sf[base % D + h : base % D + P]
            for j in range(h):
                a, b = lo[j], hi[j]
                lo[j], hi[j] = ((a + b) * c) * slo[j], ((a - b) * c) * shi[j]
        else:
            for j in range(h):
                a, b = lo[j], hi[j]
                lo[j], hi[j] = (a + b) * c, (a - b) * c


@njit(cache=True, inline="always")
def load_rotated(xs, D, sf, P, c, buf):
    """buf = rotate(xs) = signs * H(xs) * c, both flat blocks of whole rows."""
    if P >= 16:  # the copy does the first stage
        for k in range(xs.shape[0] // 2):
            a, b = xs[2 * k], xs[2 * k + 1]
            buf[2 * k], buf[2 * k + 1] = a + b, a - b
        stages(buf, 2, P // 2)
    else:
        buf[:] = xs
        stages(buf, 1, P // 2)
    last_stage(buf, P, c, sf, True)
