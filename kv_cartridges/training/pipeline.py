"""Corpus ids in, trained cartridge out: self-study data (cached on disk), then training.

With a ``work_dir`` the self-study data set (the teacher's top-k targets) and the training
checkpoint live there, so a second run with the same settings skips generation and an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from kv_cartridges.training.cartridge import Cartridge
from kv_cartridges.training.selfstudy import (
    ChatFormat,
    Sample,
    SelfStudyConfig,
    TextEncoder,
    load_samples,
    make_samples,
    save_samples,
)
from kv_cartridges.training.train import TrainConfig, train_cartridge

__all__ = ["Progress", "TrainedCartridge", "train_from_corpus"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (phase, done, total): "selfstudy" then "train"


@dataclass
class TrainedCartridge:
    """The cartridge plus how it was made: loss curve, seconds per phase, settings."""

    cartridge: Cartridge
    losses: list[float]
    selfstudy_seconds: float
    train_seconds: float
    settings: dict[str, object] = field(default_factory=dict)


def train_from_corpus(
    model: nn.Module,
    tok: TextEncoder,
    corpus_ids: torch.Tensor,
    *,
    tokens: int,
    selfstudy: SelfStudyConfig = SelfStudyConfig(),
    train: TrainConfig = TrainConfig(),
    fmt: ChatFormat = ChatFormat(),
    work_dir: Path | None = None,
    progress: Progress | None = None,
) -> TrainedCartridge:
    """Self-study on ``corpus_ids`` (1-D), then train a ``tokens``-position cartridge."""
    context = fmt.context(tok, corpus_ids)
    if not 2 <= tokens <= context.numel():
        raise ValueError(f"tokens must be in [2, {context.numel()}] for this corpus, got {tokens}")
    folder = None
    if work_dir is not None:  # one folder per corpus; file names carry the settings
        folder = (
            work_dir / f"corpus-{hashlib.sha256(corpus_ids.numpy().tobytes()).hexdigest()[:12]}"
        )
    start = time.perf_counter()
    samples = _samples(model, tok, corpus_ids, selfstudy, fmt, folder, progress)
    selfstudy_seconds = time.perf_counter() - start
    cartridge = Cartridge.from_prefix(model, context, tokens)
    ckpt = None if folder is None else folder / _key("checkpoint", tokens, selfstudy, fmt, train)
    result = train_cartridge(
        model,
        cartridge,
        samples,
        train,
        checkpoint=ckpt,
        on_step=None if progress is None else lambda s, _loss: progress("train", s, train.steps),
    )
    settings = {"tokens": tokens, "selfstudy": asdict(selfstudy), "train": asdict(train)}
    return TrainedCartridge(cartridge, result.losses, selfstudy_seconds, result.seconds, settings)


def _key(kind: str, tokens: int | None, *configs: object) -> str:
    """A file name that changes with every setting that changes the file's content."""
    blob = json.dumps([tokens, *[asdict(c) for c in configs]], sort_keys=True)  # type: ignore[call-overload]
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}.safetensors"


def _samples(
    model: nn.Module,
    tok: TextEncoder,
    corpus_ids: torch.Tensor,
    config: SelfStudyConfig,
    fmt: ChatFormat,
    folder: Path | None,
    progress: Progress | None,
) -> list[Sample]:
    # "v2": targets aligned with the next token (v1 files repeated the first answer step)
    path = None if folder is None else folder / _key("selfstudy-v2", None, config, fmt)
    if path is not None and path.exists():
        log.info("self-study data from %s", path)
        return load_samples(path)
    on = None if progress is None else (lambda i: progress("selfstudy", i, config.samples))
    samples = make_samples(model, tok, corpus_ids, config, fmt=fmt, on_sample=on)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_samples(path, samples, config)
    return samples
