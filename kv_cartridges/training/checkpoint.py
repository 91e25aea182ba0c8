"""Checkpoints and trained cartridges as safetensors (no pickle): tensors + JSON metadata.

A checkpoint holds the cartridge, Adam's moments and step counts, the step reached and the loss
curve, so that resuming reproduces an uninterrupted run exactly. A cartridge file holds only the
full ``[L, H, P, D]`` keys and values plus caller metadata (model, corpus, settings).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from kv_cartridges.training.cartridge import Cartridge

__all__ = ["load_cartridge", "load_checkpoint", "save_cartridge", "save_checkpoint"]

CHECKPOINT_FORMAT = "memsvc.cartridge.checkpoint"
CARTRIDGE_FORMAT = "memsvc.cartridge"


def save_checkpoint(
    path: Path, cartridge: Cartridge, opt: torch.optim.Optimizer, step: int, losses: list[float]
) -> None:
    """Write everything needed to resume at ``step`` (atomically: temp file, then rename)."""
    tensors = {f"cartridge.{k}": v for k, v in cartridge.state_dict().items()}
    names = dict(cartridge.named_parameters())
    params = {id(p): n for n, p in names.items()}
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                t = value if torch.is_tensor(value) else torch.tensor(float(value))
                tensors[f"adam.{params[id(p)]}.{key}"] = t
    meta = {"format": CHECKPOINT_FORMAT, "step": str(step), "losses": json.dumps(losses)}
    _save(path, tensors, meta)


def load_checkpoint(
    path: Path, cartridge: Cartridge, opt: torch.optim.Optimizer
) -> tuple[int, list[float]]:
    """Restore ``cartridge`` and ``opt`` in place; returns ``(step, losses)``."""
    meta = _metadata(path)
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a cartridge checkpoint (format {meta.get('format')!r})")
    tensors = load_file(str(path))
    device = cartridge.keys.device
    own = {
        k.removeprefix("cartridge."): v for k, v in tensors.items() if k.startswith("cartridge.")
    }
    cartridge.load_state_dict(own)
    for name, p in cartridge.named_parameters():
        prefix = f"adam.{name}."
        state = {
            k.removeprefix(prefix): v.to(device) for k, v in tensors.items() if k.startswith(prefix)
        }
        if state:
            state["step"] = state["step"].cpu()  # Adam keeps step on the CPU
            opt.state[p] = state
    return int(meta["step"]), json.loads(meta["losses"])


def save_cartridge(
    path: Path, cartridge: Cartridge, metadata: dict[str, Any] | None = None
) -> None:
    """Write the trained cartridge: ``keys``/``values`` ``[L, H, P, D]`` float32 (plus its own
    parametrisation, for an exact reload) and JSON metadata."""
    tensors = {"keys": cartridge.full_keys().detach(), "values": cartridge.full_values().detach()}
    tensors |= {f"state.{k}": v for k, v in cartridge.state_dict().items()}  # exact reload
    meta = {"format": CARTRIDGE_FORMAT, "metadata": json.dumps(metadata or {})}
    _save(path, tensors, meta)


def load_cartridge(path: Path) -> tuple[Cartridge, dict[str, Any]]:
    """Read what :func:`save_cartridge` wrote: the cartridge and its metadata."""
    meta = _metadata(path)
    if meta.get("format") != CARTRIDGE_FORMAT:
        raise ValueError(f"{path} is not a cartridge file (format {meta.get('format')!r})")
    t = load_file(str(path))
    cartridge = Cartridge(t["keys"], t["values"])
    cartridge.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("state.")})
    return cartridge, json.loads(meta.get("metadata", "{}"))


def _save(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta
    )
    tmp.replace(path)


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}
