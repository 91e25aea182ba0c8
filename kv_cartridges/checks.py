"""Deep checks of a KV container file beyond its manifest: that the header's data offsets tile
the data section exactly (each tensor's bytes = shape x dtype), and that every layer decodes to
finite values the codec can take again.

``check_offsets`` runs inside every read (:mod:`kv_cartridges.format`); ``check_values`` decodes
the whole cache, a bounded slice at a time, and is for a store that must not accept a container
it would fail on later (loading, composing, re-encoding).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from kv_cartridges.manifest import FormatError, Manifest
from kv_cartridges.quant import PackedKV, QuantError, decode, expected_tensors
from kv_cartridges.quant.reference import FP16_MAX

__all__ = ["ST_DTYPES", "check_offsets", "check_values"]

ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "U8": torch.uint8, "I8": torch.int8}  # fmt: skip
_MAX_RANK = 4  # every tensor of a container is [B, H, ...] or smaller
_MAX_DIM = 1 << 40
_SLICE_ELEMENTS = 1 << 22  # decoded per step: 16 MiB of float32 per side


def _count(value: Any, limit: int = _MAX_DIM) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def _span(name: str, entry: Any) -> tuple[int, int]:
    """``(begin, end)`` of one tensor entry, refused unless its bytes are shape x dtype."""
    what = f"tensor {name!r:.80}"
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise FormatError(f"{what}: an entry is exactly {{dtype, shape, data_offsets}}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in ST_DTYPES:
        raise FormatError(f"{what}: dtype {dtype!r:.20} (a container holds {sorted(ST_DTYPES)})")
    if not isinstance(shape, list) or len(shape) > _MAX_RANK or not all(map(_count, shape)):
        raise FormatError(f"{what}: shape {shape!r:.80} is not a list of up to 4 sizes")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(map(_count, offsets))
        or offsets[0] > offsets[1]
    ):
        raise FormatError(f"{what}: bad data_offsets {offsets!r:.80}")
    need = math.prod(shape) * ST_DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != need:
        raise FormatError(
            f"{what}: data_offsets {offsets} cover {offsets[1] - offsets[0]} bytes; "
            f"{dtype} {shape} needs {need}"
        )
    return offsets[0], offsets[1]


def check_offsets(header: dict[str, Any], data_len: int) -> None:
    """Every tensor entry of a safetensors header (``__metadata__`` removed) well formed, its
    bytes exactly its shape x dtype, and the entries tiling ``data_len`` bytes in order, with no
    gap, overlap or byte left over."""
    at = 0
    for begin, end, name in sorted((*_span(n, e), n) for n, e in header.items()):
        if begin != at:
            raise FormatError(
                f"tensor {name!r:.80} starts at byte {begin} of the data; the tensors before it "
                f"end at {at} ({'overlap' if begin < at else 'gap'})"
            )
        at = end
    if at > data_len:
        raise FormatError(f"truncated: the tensors need {at} data bytes, {data_len} are there")
    if at < data_len:
        raise FormatError(f"oversized: {data_len - at} bytes after the last tensor")


def _slices(m: Manifest) -> Iterator[tuple[int, slice]]:
    """``(batch, heads)`` slices covering a layer, each about ``_SLICE_ELEMENTS`` decoded
    values (at least one head), so decoding is bounded in memory and in calls."""
    B, H = m.batch, m.model.num_kv_heads
    per_head = max(m.n_tokens * m.model.head_dim, 1)
    step = max(1, _SLICE_ELEMENTS // per_head)
    for b in range(B):
        for h in range(0, H, step):
            yield b, slice(h, min(h + step, H))


def _raw_slice(st: Any, i: int, b: int, heads: slice) -> tuple[torch.Tensor, torch.Tensor]:
    k, v = (st.get_slice(f"layers.{i}.{s}")[b : b + 1, heads] for s in ("k", "v"))
    return k, v


def _packed_slice(
    st: Any, header: dict[str, Any], i: int, b: int, heads: slice
) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = {}
    for name, (shape, _) in expected_tensors(header).items():
        view = st.get_slice(f"layers.{i}.{name}")
        tensors[name] = view[b : b + 1, heads] if len(shape) > 1 else view[:]  # signs, rope_freq
    _, _, T, D = header["shape"]
    part = dict(header, shape=[1, heads.stop - heads.start, T, D])
    return decode(PackedKV(tensors, part))


def check_values(path: str | os.PathLike[str], manifest: Manifest) -> None:
    """Decode every layer of a container file (already read and verified) and require every
    value finite and within the codec's range (|x| <= 65504), so it can be loaded, composed and
    re-encoded. Raises ``FormatError`` naming the first layer that is not."""
    m = manifest
    if m.n_tokens == 0:
        return
    try:
        with safe_open(os.fspath(path), framework="pt") as st:
            for i in range(m.model.num_layers):
                for b, heads in _slices(m):
                    if m.codec["name"] == "raw":
                        k, v = _raw_slice(st, i, b, heads)
                    else:
                        k, v = _packed_slice(st, m.layers[i], i, b, heads)
                    for side, x in (("k", k), ("v", v)):
                        top = float(x.abs().amax().float())  # NaN when any element is
                        if not top <= FP16_MAX:
                            raise FormatError(
                                f"layer {i}: {side} decodes to {top:g} (batch {b}); values must "
                                f"be finite and within +-{FP16_MAX:g}"
                            )
    except (QuantError, SafetensorError) as exc:
        raise FormatError(f"does not decode: {exc}") from exc
