"""``memsvc bench cartridge``: does a trained KV cartridge carry a LoCoMo conversation?

1. Corpus: one LoCoMo conversation rendered ``[date] Speaker: text`` (BENCHMARKS.md), whole lines
   up to ``corpus_tokens`` tokens of context (ChatML system turn around it).
2. Questions: that conversation's QA pairs whose evidence turns all lie inside the corpus
   (adversarial category 5 has no gold answer and is left out).
3. Metric: mean negative log-likelihood per gold-answer token, the question asked as a user turn
   after the KV cache of each variant: ``icl`` (whole corpus), ``truncated`` (its first P
   tokens), ``cartridge`` (P trained positions), ``cartridge_quantized`` (same, after
   ``QuantSpec()`` encode/decode). Each KV is evaluated as stored (fp16 rounding applied).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.quant import QuantSpec, warm_up
from kv_cartridges.training import (
    ChatFormat,
    KVList,
    SelfStudyConfig,
    TrainConfig,
    kv_to_cache,
    pick_device,
    quantize_kv,
    train_from_corpus,
)
from memsvc.bench.kv import load_model, render_conversation

__all__ = ["CartridgeBench", "Variant", "progress_bar", "render", "run_cartridge_bench"]

log = logging.getLogger(__name__)
VARIANTS = ("icl", "truncated", "cartridge", "cartridge_quantized")


@dataclass
class Variant:
    name: str
    kv_tokens: int
    kv_bytes: int
    answer_nll: float
    first_token_nll: float = 0.0  # mean NLL of each answer's first token (style, casing)
    later_tokens_nll: float = 0.0  # mean NLL of the answers' other tokens (the content)


@dataclass
class CartridgeBench:
    sample_id: str
    corpus_tokens: int
    questions: int
    answer_tokens: int
    variants: list[Variant]
    settings: dict[str, Any]
    selfstudy_seconds: float
    train_seconds: float
    eval_seconds: float
    losses: list[float] = field(default_factory=list)

    def nll(self, name: str) -> float:
        return next(v.answer_nll for v in self.variants if v.name == name)

    def kv_bytes(self, name: str) -> int:
        return next(v.kv_bytes for v in self.variants if v.name == name)

    @property
    def gap_closed(self) -> float:
        """Share of the truncated-to-ICL NLL gap the cartridge closes."""
        gap = self.nll("truncated") - self.nll("icl")
        return (self.nll("truncated") - self.nll("cartridge")) / gap if gap else float("nan")

    @property
    def quantized_retention(self) -> float:
        """Share of the cartridge's gain over truncation kept after quantization."""
        gain = self.nll("truncated") - self.nll("cartridge")
        q = self.nll("truncated") - self.nll("cartridge_quantized")
        return q / gain if gain else float("nan")

    @property
    def compression(self) -> float:
        """ICL fp16 bytes over the quantized cartridge's bytes."""
        return self.kv_bytes("icl") / self.kv_bytes("cartridge_quantized")


# --- data -------------------------------------------------------------------------------------


def _turns(sample: dict[str, Any]) -> list[tuple[str, str]]:
    """``(dia_id, rendered line)`` in session order; joined they equal ``render_conversation``."""
    conv = sample["conversation"]
    sessions = sorted(int(m.group(1)) for k in conv if (m := re.fullmatch(r"session_(\d+)", k)))
    out = []
    for n in sessions:
        date = conv.get(f"session_{n}_date_time", "")
        out += [
            (t["dia_id"], f"[{date}] {t['speaker']}: {t['text']}") for t in conv[f"session_{n}"]
        ]
    assert "\n".join(line for _, line in out) == render_conversation(sample)
    return out


def load_corpus(
    data: Path, sample_id: str, tok: Any, corpus_tokens: int, fmt: ChatFormat
) -> tuple[torch.Tensor, list[tuple[str, str]]]:
    """Corpus ids (whole lines, context within ``corpus_tokens``) and its answerable QA pairs."""
    samples = json.loads(data.read_text())
    sample = next((s for s in samples if s["sample_id"] == sample_id), None)
    if sample is None:
        raise ValueError(f"no conversation {sample_id!r} in {data}")
    turns = _turns(sample)
    overhead = fmt.context(tok, torch.zeros(0, dtype=torch.long)).numel()
    lo, hi = 1, len(turns)  # most lines whose rendering fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        n = len(tok.encode("\n".join(x for _, x in turns[:mid]), add_special_tokens=False))
        lo, hi = (mid, hi) if n + overhead <= corpus_tokens else (lo, mid - 1)
    text = "\n".join(x for _, x in turns[:lo])
    kept = {d for d, _ in turns[:lo]}
    qa = [
        (q["question"], str(q["answer"]))
        for q in sample["qa"]
        if q.get("category") != 5 and "answer" in q and q.get("evidence")
        and all(e.strip() in kept for e in q["evidence"])
    ]  # fmt: skip
    return torch.tensor(tok.encode(text, add_special_tokens=False)), qa


# --- evaluation --------------------------------------------------------------------------------


def _fp16(kv: KVList) -> KVList:
    """The KV as an fp16 store would give it back (evaluated in fp32)."""
    return [(k.half().float(), v.half().float()) for k, v in kv]


def _fp16_bytes(kv: KVList) -> int:
    return sum(2 * (k.numel() + v.numel()) for k, v in kv)


@torch.inference_mode()
def prefill(model: Any, ids: torch.Tensor) -> KVList:
    device = next(model.parameters()).device
    layers = model(ids.unsqueeze(0).to(device), use_cache=True, logits_to_keep=1).cache.layers
    return [(layer.keys, layer.values) for layer in layers]


@torch.inference_mode()
def answer_nll(
    model: Any, kv: KVList, qa: list[tuple[torch.Tensor, torch.Tensor]], batch: int = 8
) -> tuple[float, int]:
    """Mean NLL per answer token (all answers' tokens pooled), each answer after its question
    on a fresh copy of ``kv``. Questions run ``batch`` at a time, right-padded: a causal model's
    real positions never see the padding after them."""
    per_token = answer_token_nll(model, kv, qa, batch)
    flat = torch.cat(per_token)
    return float(flat.mean()), flat.numel()


@torch.inference_mode()
def answer_token_nll(
    model: Any, kv: KVList, qa: list[tuple[torch.Tensor, torch.Tensor]], batch: int = 8
) -> list[torch.Tensor]:
    """Per question, the NLL of each answer token (float64, (A,))."""
    device = next(model.parameters()).device
    out = []
    for first in range(0, len(qa), batch):
        group = qa[first : first + batch]
        seqs = [torch.cat([q, a]) for q, a in group]
        width = max(s.numel() for s in seqs)
        ids = torch.zeros(len(seqs), width, dtype=torch.long)  # (B, W)
        for b, s in enumerate(seqs):
            ids[b, : s.numel()] = s
        rows = [(k.expand(len(seqs), -1, -1, -1), v.expand(len(seqs), -1, -1, -1)) for k, v in kv]
        logits = model(ids.to(device), cache=kv_to_cache(rows), use_cache=True).logits  # (B, W, V)
        for b, (q, a) in enumerate(group):
            logp = logits[b, q.numel() - 1 : q.numel() + a.numel() - 1].double().log_softmax(-1)
            out.append(-logp.gather(-1, a.to(device).unsqueeze(-1)).squeeze(-1).cpu())  # (A,)
    return out


# --- the run -----------------------------------------------------------------------------------


def run_cartridge_bench(
    data: Path,
    *,
    sample_id: str = "conv-26",
    corpus_tokens: int = 4096,
    tokens: int = 256,
    selfstudy: SelfStudyConfig = SelfStudyConfig(),
    train: TrainConfig = TrainConfig(),
    work_dir: Path | None = None,
    threads: int | None = None,
    console: Console | None = None,
) -> CartridgeBench:
    """Train a ``tokens``-position cartridge on one conversation and compare the four variants."""
    if threads:
        torch.set_num_threads(threads)
    fmt = ChatFormat()
    model, tok = load_model()
    model.to(pick_device())
    corpus_ids, qa_text = load_corpus(data, sample_id, tok, corpus_tokens, fmt)
    context = fmt.context(tok, corpus_ids)
    if tokens * 8 > context.numel():
        log.warning("P=%d is more than 1/8 of the %d corpus tokens", tokens, context.numel())
    qa = [(fmt.question(tok, q), torch.tensor(tok.encode(a, add_special_tokens=False)))
          for q, a in qa_text]  # fmt: skip
    with progress_bar(console) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done)

        trained = train_from_corpus(
            model, tok, corpus_ids, tokens=tokens, selfstudy=selfstudy, train=train,
            fmt=fmt, work_dir=work_dir, progress=progress,
        )  # fmt: skip
    start = time.perf_counter()
    icl = _fp16(prefill(model, context))
    trunc = [(k[:, :, :tokens], v[:, :, :tokens]) for k, v in icl]
    cart = _fp16(trained.cartridge.detached_kv())
    warm_up()
    key_rope = ModelFingerprint.from_model(model).key_rope(0)  # as the KV store encodes it
    packed = quantize_kv([(k.cpu(), v.cpu()) for k, v in cart], QuantSpec(), key_rope=key_rope)
    device = cart[0][0].device
    cart_q = [(k.to(device).float(), v.to(device).float()) for k, v in packed.decode()]
    kvs = {"icl": icl, "truncated": trunc, "cartridge": cart, "cartridge_quantized": cart_q}
    sizes = {n: _fp16_bytes(kv) for n, kv in kvs.items()} | {"cartridge_quantized": packed.nbytes}
    variants, answer_tokens = [], 0
    for name, kv in kvs.items():
        per = answer_token_nll(model, kv, qa)
        flat, later = torch.cat(per), torch.cat([x[1:] for x in per])
        answer_tokens = flat.numel()
        nll = float(flat.mean())
        firsts = float(torch.stack([x[0] for x in per]).mean())
        variants.append(
            Variant(name, kv[0][0].shape[2], sizes[name], nll, firsts, float(later.mean()))
        )
        log.info("%s: nll %.4f", name, nll)
    return CartridgeBench(
        sample_id=sample_id,
        corpus_tokens=context.numel(),
        questions=len(qa),
        answer_tokens=answer_tokens,
        variants=variants,
        settings=trained.settings | {"quant": QuantSpec().to_dict(), "threads": threads,
                                     "device": str(device), "corpus_tokens": context.numel()},
        selfstudy_seconds=trained.selfstudy_seconds,
        train_seconds=trained.train_seconds,
        eval_seconds=time.perf_counter() - start,
        losses=trained.losses,
    )  # fmt: skip


def progress_bar(console: Console | None) -> Progress:
    """A rich bar per phase (self-study, train) with counts and elapsed time."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )  # fmt: skip


def render(result: CartridgeBench, console: Console, json_path: Path | None) -> None:
    """Print the table and the goals; ``json_path`` gets one object per variant plus settings."""
    table = Table(
        title=f"memsvc bench cartridge ({result.sample_id}: {result.corpus_tokens} corpus tokens, "
        f"{result.questions} questions, {result.answer_tokens} answer tokens)"
    )
    for col in ("variant", "KV tokens", "KV bytes", "answer NLL", "1st token", "later tokens",
                "bytes vs ICL"):  # fmt: skip
        table.add_column(col, justify="left" if col == "variant" else "right")
    icl_bytes = result.kv_bytes("icl")
    for v in result.variants:
        ratio = f"{icl_bytes / v.kv_bytes:.1f}x smaller" if v.name != "icl" else "-"
        table.add_row(v.name, str(v.kv_tokens), f"{v.kv_bytes:,}", f"{v.answer_nll:.4f}",
                      f"{v.first_token_nll:.3f}", f"{v.later_tokens_nll:.3f}", ratio)  # fmt: skip
    console.print(table)
    curve = result.losses
    marks = [curve[min(len(curve) - 1, i * len(curve) // 8)] for i in range(8)] + curve[-1:]
    console.print("loss curve: " + " ".join(f"{x:.3f}" for x in marks) if curve else "no steps")
    kept = (
        f"{100 * result.quantized_retention:.1f}% of the gain"
        if result.nll("truncated") > result.nll("cartridge")
        else "n/a (no gain over truncation to keep)"
    )
    console.print(
        f"gap closed {100 * result.gap_closed:.1f}% (goal >= 50%) | quantized keeps {kept} "
        f"(goal >= 95%) | ICL fp16 / quantized cartridge = {result.compression:.1f}x (goal >= 30x)"
    )
    console.print(
        f"self-study {result.selfstudy_seconds:.0f} s, training {result.train_seconds:.0f} s, "
        f"evaluation {result.eval_seconds:.0f} s; settings {json.dumps(result.settings)}",
        soft_wrap=True,
    )
    if json_path is not None:
        out = {v.name: asdict(v) for v in result.variants}
        out |= {k: v for k, v in asdict(result).items() if k != "variants"}
        out |= {"gap_closed": result.gap_closed, "quantized_retention": result.quantized_retention,
                "compression": result.compression}  # fmt: skip
        json_path.write_text(json.dumps(out, indent=2))
        console.print(f"written to {json_path}")
