"""Trained KV cartridges (Cartridges, arXiv 2506.06266): self-study + context distillation.

    cartridge = Cartridge.from_prefix(model, context_ids, tokens=256)   # KV of the first P tokens
    samples = make_samples(model, tokenizer, corpus_ids, SelfStudyConfig(samples=64))
    result = train_cartridge(model, cartridge, samples, TrainConfig(steps=200), checkpoint=path)
    out = generate(model, prompt_ids, cache=cartridge.to_cache())

Nothing here knows about HTTP, SQL or the service; callers store the result (quantized with
``kv_cartridges.quant``) through the KV backend.
"""

from kv_cartridges.training.cartridge import Cartridge, KVList, kv_to_cache
from kv_cartridges.training.checkpoint import (
    load_cartridge,
    load_checkpoint,
    save_cartridge,
    save_checkpoint,
)
from kv_cartridges.training.generate import Generation, generate
from kv_cartridges.training.pipeline import Progress, TrainedCartridge, train_from_corpus
from kv_cartridges.training.quantize import QuantizedKV, quantize_kv
from kv_cartridges.training.selfstudy import (
    SEED_PROMPTS,
    ChatFormat,
    Sample,
    SelfStudyConfig,
    TextEncoder,
    load_samples,
    make_samples,
    save_samples,
)
from kv_cartridges.training.train import (
    TrainConfig,
    TrainResult,
    distill_loss,
    pick_device,
    train_cartridge,
)

__all__ = [
    "SEED_PROMPTS",
    "Cartridge",
    "ChatFormat",
    "Generation",
    "KVList",
    "Progress",
    "QuantizedKV",
    "Sample",
    "SelfStudyConfig",
    "TextEncoder",
    "TrainConfig",
    "TrainResult",
    "TrainedCartridge",
    "distill_loss",
    "generate",
    "kv_to_cache",
    "load_cartridge",
    "load_checkpoint",
    "load_samples",
    "make_samples",
    "pick_device",
    "quantize_kv",
    "save_cartridge",
    "save_checkpoint",
    "save_samples",
    "train_cartridge",
    "train_from_corpus",
]
