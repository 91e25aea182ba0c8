"""``encode(k, v, spec) -> PackedKV`` and ``decode(packed) -> (k, v)``: validation, kept tokens,
and dispatch to the fused kernels (``fused.py``, numba, CPU) or the torch reference.

Per side: tokens ``[0, S)`` (sinks) and ``[T - W, T)`` (window) are stored in 16-bit; tokens
``[S, T - W)`` are (optionally rotated,) quantized and bit-packed. With ``spec.pre_rope_k`` and a
``key_rope``, the quantized keys are first turned back to before RoPE (``rope.py``).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import torch

from kv_cartridges.quant import fused, reference
from kv_cartridges.quant.errors import QuantError
from kv_cartridges.quant.packed import FORMAT, VERSION, VERSION_KEY_ROPE, PackedKV
from kv_cartridges.quant.packing import packed_nbytes
from kv_cartridges.quant.rope import MAX_POSITION, KeyRope, rope_tables
from kv_cartridges.quant.rotation import random_signs
from kv_cartridges.quant.spec import QuantSpec

__all__ = ["Impl", "decode", "encode", "expected_tensors", "key_rope_of"]

Impl = Literal["auto", "fused", "reference"]
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SIDES = ("k", "v")


def _backend(impl: Impl, device: torch.device):
    if impl == "reference":
        return reference
    if impl not in ("auto", "fused"):
        raise QuantError(f"impl={impl!r}: expected 'auto', 'fused' or 'reference'")
    ok = device.type == "cpu" and fused.available()
    if impl == "fused" and not ok:
        raise QuantError(f"the fused kernels need numba and a CPU tensor (device {device})")
    return fused if ok else reference


@functools.lru_cache(maxsize=256)
def _spec_dict(spec: QuantSpec) -> dict[str, Any]:
    return spec.to_dict()


def _check_input(k: Any, v: Any) -> None:
    for name, x in (("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor):
            raise QuantError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise QuantError(f"{name} must be [batch, kv_heads, tokens, head_dim]: {list(x.shape)}")
        if x.dtype not in DTYPES.values():
            raise QuantError(f"{name} has dtype {x.dtype}; expected float32, float16 or bfloat16")
    if k.shape != v.shape or k.dtype != v.dtype or k.device != v.device:
        raise QuantError(
            f"k and v differ: {list(k.shape)} {k.dtype} {k.device}"
            f" vs {list(v.shape)} {v.dtype} {v.device}"
        )


def _kept(x: torch.Tensor, store: torch.dtype, name: str) -> torch.Tensor:
    """Tokens kept in 16-bit, refused if non-finite (or beyond fp16 when stored as fp16)."""
    top = float(x.abs().amax()) if x.numel() else 0.0  # NaN/inf when any element is
    if not top <= (reference.FP16_MAX if store == torch.float16 else float("inf")):
        reference._check(x.float(), name)
    return x.to(store).contiguous()


def encode(
    k: torch.Tensor,
    v: torch.Tensor,
    spec: QuantSpec | None = None,
    *,
    impl: Impl = "auto",
    key_rope: KeyRope | None = None,
) -> PackedKV:
    """Quantize one layer's K and V ``[B, H, T, D]`` (float32, float16, bfloat16).

    ``key_rope``: the rotary embedding the keys carry (the model's frequencies and the cache's
    first position). With ``spec.pre_rope_k`` the keys are quantized before it; without one they
    are quantized as given."""
    spec = QuantSpec() if spec is None else spec
    if not isinstance(spec, QuantSpec):
        raise QuantError(f"spec must be a QuantSpec (see spec_for_layer): {type(spec).__name__}")
    if key_rope is not None and not isinstance(key_rope, KeyRope):
        raise QuantError(f"key_rope must be a KeyRope: {type(key_rope).__name__}")
    _check_input(k, v)
    rope = key_rope if spec.pre_rope_k else None
    backend = _backend(impl, k.device)
    B, H, T, D = k.shape
    S = min(spec.sink_tokens, T)
    W = min(spec.window_tokens, T - S)
    store = torch.bfloat16 if k.dtype == torch.bfloat16 else torch.float16
    tensors: dict[str, torch.Tensor] = {}
    for s, x in zip(SIDES, (k, v), strict=True):
        bits, rotated = (spec.k_bits, spec.rotate_k) if s == "k" else (spec.v_bits, spec.rotate_v)
        x32 = x.to(torch.float32).contiguous()  # (B, H, T, D); no copy for contiguous float32
        signs = random_signs(D, spec.seed) if rotated else None
        turn = rope_tables(rope, S, T - W, inverse=True) if s == "k" and rope else None
        codes, scale, zero = backend.encode_side(
            x32, S, T - W, s, bits, spec.group_size, signs, s, turn
        )
        tensors.update({f"{s}.codes": codes, f"{s}.scale": scale, f"{s}.zero": zero})
        if S:
            tensors[f"{s}.sink"] = _kept(x[:, :, :S], store, f"{s} (sink tokens)")
        if W:
            tensors[f"{s}.window"] = _kept(x[:, :, T - W :], store, f"{s} (window tokens)")
        if signs is not None:
            tensors[f"{s}.signs"] = signs
    header = {
        "format": FORMAT,
        "version": VERSION,
        "shape": [B, H, T, D],
        "dtype": str(k.dtype).removeprefix("torch."),
        "spec": dict(_spec_dict(spec)),
        "sink": S,
        "window": W,
    }
    if rope is not None:  # version 2: a version-1 reader must refuse, not decode rotated keys
        header |= {
            "version": VERSION_KEY_ROPE,
            "key_rope": {"start": rope.start, "pairs": rope.pairs},
        }
        tensors["k.rope_freq"] = rope.inv_freq.clone()
    return PackedKV(tensors, header)


def _key_rope_header(header: dict[str, Any], D: int) -> tuple[int, int] | None:
    """``(start, pairs)`` of a pack whose keys were quantized before RoPE, else None."""
    if "key_rope" not in header:
        return None
    if header.get("version") != VERSION_KEY_ROPE:
        raise QuantError(
            f"bad kvquant header: key_rope in a version {header.get('version')} header"
        )
    rope = header["key_rope"]
    start, pairs = (rope.get(n) if isinstance(rope, dict) else None for n in ("start", "pairs"))
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (start, pairs)):
        raise QuantError(f"bad kvquant header: key_rope {rope!r:.100} needs integer start, pairs")
    if not 0 <= start <= MAX_POSITION or not 1 <= pairs <= D // 2:
        raise QuantError(
            f"bad kvquant header: key_rope start {start}, pairs {pairs} (head_dim {D})"
        )
    return start, pairs


def expected_tensors(header: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Every tensor name a packed layer with this header holds, with its shape and dtype."""
    try:
        B, H, T, D = (int(n) for n in header["shape"])
        spec = QuantSpec.from_dict(header["spec"])
        S, W, dtype = int(header["sink"]), int(header["window"]), DTYPES[header["dtype"]]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise QuantError(f"bad kvquant header: {exc!r}") from exc
    if min(B, H, T, D, S, W, T - S - W) < 0:
        raise QuantError(f"bad kvquant header: shape {[B, H, T, D]}, sink {S}, window {W}")
    Tq, G = T - S - W, spec.group_size
    store = torch.bfloat16 if dtype == torch.bfloat16 else torch.float16
    out: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
    for s in SIDES:
        bits, rotated = (spec.k_bits, spec.rotate_k) if s == "k" else (spec.v_bits, spec.rotate_v)
        groups = (B, H, -(-Tq // G), D) if s == "k" else (B, H, Tq, -(-D // min(G, D)))
        out[f"{s}.codes"] = ((B, H, packed_nbytes(Tq * D, bits)), torch.uint8)
        out[f"{s}.scale"] = out[f"{s}.zero"] = (groups, torch.float16)
        if S:
            out[f"{s}.sink"] = ((B, H, S, D), store)
        if W:
            out[f"{s}.window"] = ((B, H, W, D), store)
        if rotated:
            out[f"{s}.signs"] = ((D,), torch.int8)
    if (rope := _key_rope_header(header, D)) is not None:
        out["k.rope_freq"] = ((rope[1],), torch.float32)
    return out


def _check_packed(packed: PackedKV) -> None:
    want = expected_tensors(packed.header)
    have = packed.tensors
    if set(want) != set(have):
        raise QuantError(
            f"packed tensors {sorted(have)} do not match the header (expected {sorted(want)})"
        )
    for name, (shape, dtype) in want.items():
        t = have[name]
        if tuple(t.shape) != shape or t.dtype != dtype:
            raise QuantError(f"{name}: {list(t.shape)} {t.dtype}, header: {list(shape)} {dtype}")
    for s in SIDES:
        signs = have.get(f"{s}.signs")
        if signs is not None and not bool((signs.abs() == 1).all()):
            raise QuantError(f"{s}.signs must be +1/-1")
    freq = have.get("k.rope_freq")
    if freq is not None and not bool(torch.isfinite(freq).all()):
        raise QuantError("k.rope_freq contains NaN/Inf")


def key_rope_of(packed: PackedKV) -> KeyRope | None:
    """The rotary embedding a pack's keys were quantized before (None: quantized as given), e.g.
    to re-encode them at other bits with the same positions."""
    rope = _key_rope_header(packed.header, int(packed.header["shape"][3]))
    return None if rope is None else KeyRope(packed.tensors["k.rope_freq"], rope[0])


def decode(packed: PackedKV, *, impl: Impl = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`encode`: ``(k, v)`` in the input's dtype, ``[B, H, T, D]`` each."""
    if not isinstance(packed, PackedKV):
        raise QuantError(f"expected a PackedKV, got {type(packed).__name__}")
    _check_packed(packed)
    h, t = packed.header, packed.tensors
    B, H, T, D = h["shape"]
    S, W = h["sink"], h["window"]
    spec = QuantSpec.from_dict(h["spec"])
    rope = key_rope_of(packed)
    backend = _backend(impl, t["k.codes"].device)
    result = []
    for s in SIDES:
        bits = spec.k_bits if s == "k" else spec.v_bits
        out = torch.empty(B, H, T, D, dtype=torch.float32, device=t["k.codes"].device)
        turn = rope_tables(rope, S, T - W, inverse=False) if s == "k" and rope else None
        backend.decode_side(
            t[f"{s}.codes"], t[f"{s}.scale"], t[f"{s}.zero"], s, bits, spec.group_size,
            t.get(f"{s}.signs"), out, S, T - W, turn,
        )  # fmt: skip
        if S:
            out[:, :, :S] = t[f"{s}.sink"]
        if W:
            out[:, :, T - W :] = t[f"{s}.window"]
        result.append(out.to(DTYPES[h["dtype"]]))
    return result[0], result[1]
