"""``memsvc bench resume``: time to first token resuming a conversation from memsvc vs
re-prefilling it (SmolLM2-135M on the CPU, BENCHMARKS.md §2's conversation).

1. Render LoCoMo ``conv-26`` as ``[date] Speaker: text`` lines, tokenize; context = the first
   2,048 tokens, continuation = the next 128 (``memsvc.bench.kv``'s protocol and loader).
2. Prefill the context once -> reference cache C and the continuation's teacher-forced log-probs P.
3. Per setting: ``client.kv.save(C, model, context, spec=...)`` to a ``memsvc serve`` process on
   loopback. Resume = ``client.kv.lookup`` (context + the first continuation token) +
   ``client.kv.load`` (download, verify, decode, build the ``DynamicCache``) + the forward of
   that one new token: the first token's logits. Re-prefill = the forward of the same 2,049
   tokens from nothing. Medians over ``reps``, the two interleaved. Then the continuation
   teacher-forced on the resumed cache -> Q: KL(P||Q) and top-1 agreement over 128 positions.
   Stored bytes are the container file's (codes, scales, sinks, signs, manifest, token chain).
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from kv_cartridges.adapters import cache_layers
from kv_cartridges.quant import QuantSpec, warm_up
from memsvc.bench.common import start_server
from memsvc.bench.kv import CONTEXT, CONTINUATION, load_model, load_tokens

__all__ = ["SETTINGS", "ResumeRow", "render", "run_resume_bench"]

log = logging.getLogger(__name__)

SETTINGS: dict[str, QuantSpec] = {
    # 8-bit codes (with QuantSpec()'s 4 sinks and key rotation): about lossless
    "8-bit": QuantSpec(k_bits=8, v_bits=8),
    # QuantSpec(), the recommended setting: 4-bit, group 64, key rotation, 4 sinks (4.53 bits)
    "4-bit = QuantSpec() (recommended)": QuantSpec(),
    # PRESETS["compact"], the recommended low-bit setting: 3-bit, key rotation, 4 sinks
    "3-bit = compact (low-bit)": QuantSpec(k_bits=3, v_bits=3),
}


@dataclass
class ResumeRow:
    name: str
    bits_per_elem: float
    stored_bytes: int
    fp16_bytes: int
    resume_s: float
    prefill_s: float
    speedup: float
    kl: float
    top1: float


def _start_server(data_dir: Path, port: int, threads: int) -> tuple[subprocess.Popen, str]:
    """The server with the hash embedder (no model to load) and ``threads`` codec threads."""
    threads_env = {"OMP_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)}
    process, url, _ = start_server(data_dir, port, {"MEMSVC_EMBEDDER": "hash", **threads_env})
    return process, url


@torch.inference_mode()
def _forward(model: Any, ids: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
    out = model(ids, cache=cache, use_cache=True)
    return out.logits[0], out.cache


def _median_pair(a: Callable[[], Any], b: Callable[[], Any], reps: int) -> tuple[float, float]:
    ta, tb = [], []
    for _ in range(reps):
        for fn, ts in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def _measure(name: str, spec: QuantSpec, client: Any, model: Any, ids: torch.Tensor,
             reference: Any, logp: torch.Tensor, reps: int) -> ResumeRow:  # fmt: skip
    context = ids[0, :CONTEXT].tolist()
    query = ids[0, : CONTEXT + 1]  # the conversation so far + the first new token
    saved = client.kv.save(reference, model, context, session_id="bench", spec=spec)

    def resume() -> torch.Tensor:
        cache, n = client.kv.resume(model, query)
        assert n == CONTEXT, f"lookup covered {n} tokens, expected {CONTEXT}"
        return _forward(model, query[None, n:], cache)[0][-1]

    def prefill() -> torch.Tensor:
        return _forward(model, query[None])[0][-1]

    resume()  # warm-up: kernels, allocator, HTTP connection (prefill ran for the reference)
    resume_s, prefill_s = _median_pair(resume, prefill, reps)
    cache, _ = client.kv.resume(model, query)
    logq = _forward(model, ids[:, CONTEXT:], cache)[0].double().log_softmax(-1)
    client.kv.delete(saved.id)
    numel = 2 * sum(k.numel() for k, _ in cache_layers(reference))  # K and V, every layer
    return ResumeRow(
        name=name,
        bits_per_elem=8 * saved.size_bytes / numel,
        stored_bytes=saved.size_bytes,
        fp16_bytes=2 * numel,
        resume_s=resume_s,
        prefill_s=prefill_s,
        speedup=prefill_s / resume_s,
        kl=float((logp.exp() * (logp - logq)).sum(-1).mean()),
        top1=float((logp.argmax(-1) == logq.argmax(-1)).double().mean()),
    )


def run_resume_bench(
    data: Path,
    *,
    sample_id: str = "conv-26",
    only: tuple[str, ...] = (),
    reps: int = 3,
    threads: int = 1,
    port: int = 18766,
    console: Console | None = None,
) -> list[ResumeRow]:
    """Every setting whose name contains one of ``only`` (all when empty)."""
    import numba

    from memsvc.sdk import MemoryClient

    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    console = console or Console()
    model, tokenizer = load_model()
    ids = load_tokens(data, sample_id, tokenizer)
    warm_up()
    _, reference = _forward(model, ids[:, :CONTEXT])
    logp = _forward(model, ids[:, CONTEXT:], _copy(reference))[0].double().log_softmax(-1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="memsvc-resume-") as tmp:
        data_dir = Path(tmp) / "data"
        process, url = _start_server(data_dir, port, threads)
        try:
            key = (data_dir / "api_key").read_text().strip()
            with MemoryClient(url, key, timeout=600) as client:
                for name, spec in SETTINGS.items():
                    if only and not any(o in name for o in only):
                        continue
                    console.print(f"[dim]{name} ...[/dim]")
                    rows.append(_measure(name, spec, client, model, ids, reference, logp, reps))
                    log.info("%s", rows[-1])
        finally:
            process.terminate()
            process.wait(timeout=30)
    return rows


def _copy(cache: Any) -> Any:
    from kv_cartridges.adapters import layers_to_cache

    return layers_to_cache([(k.clone(), v.clone()) for k, v in cache_layers(cache)])


def render(rows: list[ResumeRow], console: Console, json_path: Path | None) -> None:
    table = Table(title=f"memsvc bench resume (SmolLM2-135M, {CONTEXT} + {CONTINUATION} tokens)")
    for col in ("setting", "bits/elem", "stored", "% of fp16", "resume s", "prefill s",
                "speedup", "KL(P||Q)", "top-1"):  # fmt: skip
        table.add_column(col, justify="left" if col == "setting" else "right")
    for r in rows:
        table.add_row(
            r.name, f"{r.bits_per_elem:.3f}", f"{r.stored_bytes:,}",
            f"{100 * r.stored_bytes / r.fp16_bytes:.1f}%", f"{r.resume_s:.3f}",
            f"{r.prefill_s:.2f}", f"{r.speedup:.1f}x", f"{r.kl:.4f}", f"{r.top1:.3f}",
        )  # fmt: skip
    console.print(table)
    if json_path is not None:
        json_path.write_text(json.dumps([asdict(r) for r in rows], indent=2))
        console.print(f"rows written to {json_path}")
