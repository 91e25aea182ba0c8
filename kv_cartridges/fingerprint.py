"""``ModelFingerprint``: what a KV cache must agree with to be loaded into a model.

A cache is only meaningful for the model that computed it: same architecture, layer count, KV
heads, head dim, RoPE settings and vocabulary, and (to catch silent differences) the same config.
``id`` is a short stable digest of all of it, used to index and filter stored caches.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from kv_cartridges.quant.rope import KeyRope

__all__ = ["ModelFingerprint", "config_hash"]

# Config keys that describe how a model is run, not what it computes.
_RUNTIME_KEYS = {
    "transformers_version",
    "torch_dtype",
    "dtype",
    "use_cache",
    "output_attentions",
    "output_hidden_states",
    "return_dict",
    "name_or_path",
}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: Any) -> str:
    """sha256 of a transformers config as canonical JSON, without runtime-only keys."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    kept = {k: v for k, v in data.items() if not k.startswith("_") and k not in _RUNTIME_KEYS}
    return hashlib.sha256(_canonical(kept).encode()).hexdigest()


def _number(value: Any) -> float | None:
    """A finite float from a JSON number, else None (strings, bools, null, NaN, Infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _rope(config: Any) -> dict[str, Any]:
    rope: dict[str, Any] = {}
    for name in ("rope_theta", "rope_scaling", "rope_parameters", "partial_rotary_factor"):
        value = getattr(config, name, None)
        if value is not None:
            rope[name] = json.loads(_canonical(value))
    return rope


@dataclass(frozen=True)
class ModelFingerprint:
    architecture: str  # e.g. "LlamaForCausalLM"
    num_layers: int  # decoder layers = layers of the cache
    num_kv_heads: int  # H of every [B, H, T, D] tensor
    head_dim: int  # D
    vocab_size: int
    rope: dict[str, Any] = field(default_factory=dict)  # theta, scaling / parameters
    config_hash: str = ""  # sha256 of the config (see :func:`config_hash`)

    @property
    def id(self) -> str:
        """32 hex digits identifying the fingerprint (the filter and lookup key)."""
        return hashlib.sha256(_canonical(self.to_dict()).encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rope_inv_freq(self) -> torch.Tensor | None:
        """The RoPE frequencies of the model's keys, ``(R,)`` float32 (None: no RoPE settings).

        From ``rope_theta`` as transformers' default RoPE computes them, over
        ``head_dim * partial_rotary_factor`` channels, divided by the factor of ``linear``
        scaling. Other RoPE types (llama3, yarn, dynamic) get the default frequencies: the codec
        undoes exactly the rotation it applied, so this only bounds how much their keys gain
        from being quantized before RoPE (``kv_cartridges.quant.rope``)."""
        params = self.rope.get("rope_parameters") or self.rope.get("rope_scaling") or {}
        params = params if isinstance(params, dict) else {}
        theta = _number(self.rope.get("rope_theta", params.get("rope_theta")))
        factor = _number(
            self.rope.get("partial_rotary_factor", params.get("partial_rotary_factor", 1.0))
        )
        linear = params.get("rope_type", params.get("type")) == "linear"
        scale = _number(params.get("factor", 1.0)) if linear else 1.0
        # settings that describe no usable RoPE mean keys are quantized as given, not an error
        if theta is None or factor is None or scale is None or theta <= 1 or scale <= 0:
            return None
        dim = int(self.head_dim * min(max(factor, 0.0), 1.0)) // 2 * 2
        if dim < 2:
            return None
        exponents = torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim
        inv_freq = 1.0 / (theta**exponents) / scale  # transformers' default RoPE (and linear)
        return inv_freq if bool(torch.isfinite(inv_freq).all() and (inv_freq > 0).all()) else None

    def key_rope(self, start: int = 0) -> KeyRope | None:
        """The RoPE the model's cached keys carry from position ``start`` (None: no usable RoPE
        settings, keys are quantized as given). Raises ``QuantError`` for a position beyond
        ``kv_cartridges.quant.rope.MAX_POSITION``."""
        inv_freq = self.rope_inv_freq()
        return None if inv_freq is None else KeyRope(inv_freq, start)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelFingerprint:
        """Strict: every field present with its type (raises ``ValueError`` naming it)."""
        types = {
            "architecture": str,
            "num_layers": int,
            "num_kv_heads": int,
            "head_dim": int,
            "vocab_size": int,
            "rope": dict,
            "config_hash": str,
        }
        if not isinstance(data, dict):
            raise ValueError("model fingerprint must be an object")
        unknown = sorted(set(data) - set(types))
        if unknown:
            raise ValueError(f"model fingerprint has unknown fields {unknown}")
        for name, kind in types.items():
            if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
                raise ValueError(f"model fingerprint field {name!r} must be {kind.__name__}")
            if kind is int and data[name] < 1:
                raise ValueError(f"model fingerprint field {name!r} must be positive")
        return cls(**data)

    @classmethod
    def from_config(cls, config: Any, architecture: str | None = None) -> ModelFingerprint:
        """The fingerprint of a transformers ``PretrainedConfig`` (text config of multimodal)."""
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        heads = text.num_attention_heads
        kv_heads = getattr(text, "num_key_value_heads", None) or heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
        architectures = getattr(config, "architectures", None) or [type(config).__name__]
        return cls(
            architecture=architecture or str(architectures[0]),
            num_layers=int(text.num_hidden_layers),
            num_kv_heads=int(kv_heads),
            head_dim=int(head_dim),
            vocab_size=int(text.vocab_size),
            rope=_rope(text),
            config_hash=config_hash(config),
        )

    @classmethod
    def from_model(cls, model: Any) -> ModelFingerprint:
        """The fingerprint of a loaded model (its class names the architecture when the config
        does not)."""
        names = getattr(model.config, "architectures", None)
        return cls.from_config(model.config, None if names else type(model).__name__)
