"""Chunked token-id hash chains: how a stored cache is found again from the tokens it covers.

``h(0) = sha256("memsvc.tokens/1")`` and ``h(n + c) = sha256(h(n) || ids[n : n + c])`` with the
ids as little-endian int64. A cache of ``T`` tokens records ``h`` at every multiple of the chunk
size ``C`` and at ``T`` itself, so two token sequences share the hash at ``n`` exactly when they
share their first ``n`` tokens (up to sha256 collisions). A lookup hashes the query the same way
and asks for the deepest boundary it has in common with a stored cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_CHUNK_TOKENS", "chain", "check_token_ids", "extend"]

DEFAULT_CHUNK_TOKENS = 64  # granularity of prefix matches (a lookup finds multiples of this)
_SEED = hashlib.sha256(b"memsvc.tokens/1").digest()


def check_token_ids(token_ids: Sequence[int]) -> np.ndarray:
    """The ids as int64, refusing anything that is not a flat list of non-negative integers."""
    try:
        ids = np.asarray(token_ids)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"token_ids must be a list of integers: {exc}") from exc
    if ids.size == 0:
        return np.zeros(0, dtype="<i8")
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"token_ids must be a flat list of integers, got {ids.dtype} {ids.shape}")
    if int(ids.min()) < 0:
        raise ValueError("token_ids must be non-negative")
    return ids.astype("<i8")


def extend(prev: bytes | None, ids: np.ndarray) -> bytes:
    """One link: the hash after ``ids`` given the hash before them (``None``: the seed)."""
    return hashlib.sha256((prev or _SEED) + ids.astype("<i8").tobytes()).digest()


def chain(
    token_ids: Sequence[int], chunk_tokens: int = DEFAULT_CHUNK_TOKENS
) -> list[tuple[int, str]]:
    """``(n, hex h(n))`` at every multiple of ``chunk_tokens`` up to the length, and at the
    length itself (the tail); empty for no tokens."""
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
    ids = check_token_ids(token_ids)
    out: list[tuple[int, str]] = []
    h: bytes | None = None
    for start in range(0, len(ids), chunk_tokens):
        piece = ids[start : start + chunk_tokens]
        h = extend(h, piece)
        out.append((start + len(piece), h.hex()))
    return out
