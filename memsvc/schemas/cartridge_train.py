"""``POST /v1/cartridges/train``: the request, and the service's training settings."""

from __future__ import annotations

from pydantic import Field

from memsvc.schemas.common import Strict

__all__ = ["CartridgeTrainRequest"]


class CartridgeTrainRequest(Strict):
    """Train a cartridge on ``corpus`` (self-study + distillation), store it quantized."""

    corpus: str = Field(min_length=1, description="The text the cartridge should carry.")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tokens: int = Field(default=256, ge=2, description="Cartridge positions P per layer.")
    steps: int = Field(default=200, ge=1, description="Training steps (one sample each).")
    samples: int = Field(default=48, ge=1, description="Self-study conversations.")
    chunk_tokens: int = Field(default=384, ge=8, le=8192, description="Corpus tokens per chunk.")
    reply_tokens: int = Field(default=48, ge=1, le=1024, description="Longest synthetic answer.")
    lr: float = Field(default=2e-2, gt=0, le=1.0)
    seed: int = Field(default=0, ge=0)
    quantize: bool = Field(default=True, description="Store with QuantSpec() (else raw fp16).")
