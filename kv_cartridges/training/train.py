"""The training loop: context distillation into a cartridge, Adam on the cartridge only.

loss = cross-entropy from the teacher's top-k next-token distribution (which saw the corpus chunk)
to the student's (which sees only the cartridge), averaged over the conversation's positions.

The sample order is a function of ``(seed, step)`` alone (one permutation per epoch), and the whole
optimizer state is checkpointed, so a run resumed from a checkpoint equals an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from kv_cartridges.training.cartridge import Cartridge
from kv_cartridges.training.checkpoint import load_checkpoint, save_checkpoint
from kv_cartridges.training.selfstudy import Sample

__all__ = ["TrainConfig", "TrainResult", "distill_loss", "pick_device", "train_cartridge"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the paper's Adam lr for cartridges is 2e-2)."""

    steps: int = 200
    lr: float = 2e-2
    batch: int = 1  # samples per step (gradients accumulated)
    seed: int = 0
    checkpoint_every: int = 50  # steps; 0: only at the end


@dataclass
class TrainResult:
    """The loss curve (one mean per step) and the seconds this call spent training."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0


def pick_device() -> torch.device:
    """cuda when available, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def distill_loss(
    logits: torch.Tensor, topk_ids: torch.Tensor, topk_logp: torch.Tensor
) -> torch.Tensor:
    """Mean over positions of ``-sum_k p_teacher[k] * log p_student[ids[k]]``.

    ``logits``: (T, vocab) student; ``topk_ids``/``topk_logp``: (T, K) teacher.
    """
    logp = F.log_softmax(logits.float(), dim=-1)  # (T, vocab)
    picked = logp.gather(-1, topk_ids)  # (T, K)
    return -(topk_logp.exp() * picked).sum(-1).mean()


def _order(n: int, seed: int, step: int, batch: int) -> list[int]:
    """Sample indices for ``step``: epoch-wise permutations derived from ``seed`` only."""
    out = []
    for j in range(step * batch, (step + 1) * batch):
        epoch, pos = divmod(j, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        out.append(int(perm[pos]))
    return out


def _student_loss(
    model: nn.Module, cartridge: Cartridge, s: Sample, device: torch.device
) -> torch.Tensor:
    ids = s.ids[:-1].unsqueeze(0).to(device)  # (1, n-1)
    logits = model(ids, cache=cartridge.cache(), use_cache=True).logits[0]  # (n-1, vocab)
    return distill_loss(logits, s.topk_ids.to(device), s.topk_logp.to(device))


def train_cartridge(
    model: nn.Module,
    cartridge: Cartridge,
    samples: list[Sample],
    config: TrainConfig = TrainConfig(),
    *,
    checkpoint: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train ``cartridge`` in place for ``config.steps`` steps.

    With ``checkpoint`` set, an existing file there is resumed from (cartridge, Adam state, step,
    loss curve) and the file is rewritten every ``checkpoint_every`` steps and at the end.
    ``on_step(step, loss)`` is called after each step (1-based), e.g. to move a progress bar.
    """
    if not samples:
        raise ValueError("no self-study samples to train on")
    device = next(model.parameters()).device
    model.requires_grad_(False)
    cartridge.to(device)
    opt = torch.optim.Adam(cartridge.parameters(), lr=config.lr)
    result = TrainResult()
    if checkpoint is not None and checkpoint.exists():
        result.resumed_from, result.losses = load_checkpoint(checkpoint, cartridge, opt)
        log.info("resumed %s at step %d", checkpoint, result.resumed_from)
    start = time.perf_counter()
    for step in range(result.resumed_from, config.steps):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for idx in _order(len(samples), config.seed, step, config.batch):
            loss = _student_loss(model, cartridge, samples[idx], device) / config.batch
            loss.backward()
            total += float(loss.detach())
        opt.step()
        result.losses.append(total)
        done = step + 1
        if (
            checkpoint is not None
            and config.checkpoint_every
            and done % config.checkpoint_every == 0
        ):
            save_checkpoint(checkpoint, cartridge, opt, done, result.losses)
        if on_step is not None:
            on_step(done, total)
    if checkpoint is not None:
        save_checkpoint(checkpoint, cartridge, opt, config.steps, result.losses)
    result.seconds = time.perf_counter() - start
    return result
