"""The JSON manifest of a KV container (see :mod:`kv_cartridges.format`), strictly parsed.

::

    {
      "format": "memsvc.kv", "version": 1,
      "codec": {"name": "raw"} | {"name": "kvquant", "spec": QuantSpec or LayerwiseSpec dict},
      "dtype": "float32" | "float16" | "bfloat16",      # what the cache decodes to
      "model": ModelFingerprint dict, "model_id": "<32 hex>",
      "batch": B, "n_tokens": T, "start_position": P,  # the tokens sit at positions P .. P+T-1
      "token_chain": {"chunk_tokens": C, "hashes": [hex h(C), h(2C), ..., h(T)]} | null,
      "origin": {"kind": "cartridge", "corpus_id": ...} | {"kind": "session", "session_id": ...,
                 "episode_id": ...},
      "created_at": ISO 8601 UTC,
      "layers": [PackedKV header per layer] (kvquant) | [] (raw),
      "payload_sha256": sha256 of the file's tensor data section
    }
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.quant import PRESETS, LayerwiseSpec, QuantError, QuantSpec

__all__ = [
    "CODECS",
    "DTYPES",
    "FORMAT",
    "VERSION",
    "FormatError",
    "Manifest",
    "parse_codec_spec",
    "resolve_spec",
]

FORMAT = "memsvc.kv"
VERSION = 1
CODECS = ("raw", "kvquant")
DTYPES = ("float32", "float16", "bfloat16")
ORIGIN_KINDS = ("cartridge", "session")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class FormatError(ValueError):
    """A container or manifest the reader refuses; the message names the problem."""


def parse_codec_spec(data: dict[str, Any]) -> QuantSpec | LayerwiseSpec:
    """A codec's ``spec`` dict: a QuantSpec's fields or ``{"base", "layers"}``."""
    try:
        if isinstance(data, dict) and "base" in data:
            return LayerwiseSpec.from_dict(data)
        return QuantSpec.from_dict(data)
    except (QuantError, TypeError, KeyError, ValueError) as exc:
        raise FormatError(f"codec.spec: {exc}") from exc


def resolve_spec(spec: Any) -> QuantSpec | LayerwiseSpec | None:
    """The codec spec a caller names, in any of the forms they may name it: ``None`` or
    ``"raw"`` (no codec: stored as given), a preset name (``"default"``, ``"compact"``...), a
    spec object, its dict, or that dict's JSON text. The one reading of ``spec`` for every
    door (the SDK, REST's ``?spec=``, the embedded ``Memory``); raises :class:`FormatError`."""
    if spec is None or spec == "raw":
        return None
    if isinstance(spec, (QuantSpec, LayerwiseSpec)):
        return spec
    if isinstance(spec, str) and spec.lstrip().startswith("{"):
        try:
            spec = json.loads(spec)
        except (ValueError, RecursionError) as exc:
            raise FormatError(f"not JSON: {exc}") from exc
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise FormatError(f"unknown preset {spec!r:.60} (presets: {sorted(PRESETS)})")
        return PRESETS[spec]
    if not isinstance(spec, dict):
        raise FormatError(
            f"a preset name, 'raw', None, a QuantSpec or its dict, not {type(spec).__name__}"
        )
    return parse_codec_spec(spec)


def _need(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise FormatError(f"manifest field {name!r} must be {want}, got {value!r:.80}")
    return value


@dataclass
class Manifest:
    codec: dict[str, Any]
    dtype: str
    model: ModelFingerprint
    batch: int
    n_tokens: int
    start_position: int
    origin: dict[str, Any]
    created_at: str
    token_chain: dict[str, Any] | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    payload_sha256: str = ""
    version: int = VERSION

    @property
    def model_id(self) -> str:
        return self.model.id

    @property
    def spec(self) -> QuantSpec | LayerwiseSpec | None:
        """The codec's spec (None for raw)."""
        return parse_codec_spec(self.codec["spec"]) if self.codec["name"] == "kvquant" else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "codec": self.codec,
            "dtype": self.dtype,
            "model": self.model.to_dict(),
            "model_id": self.model.id,
            "batch": self.batch,
            "n_tokens": self.n_tokens,
            "start_position": self.start_position,
            "token_chain": self.token_chain,
            "origin": self.origin,
            "created_at": self.created_at,
            "layers": self.layers,
            "payload_sha256": self.payload_sha256,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Strict parse: unknown format or version, missing or mistyped fields are refused."""
        if not isinstance(data, dict):
            raise FormatError("the manifest must be a JSON object")
        if data.get("format") != FORMAT:
            raise FormatError(f"not a {FORMAT} container (format={data.get('format')!r})")
        if data.get("version") != VERSION:
            raise FormatError(
                f"unknown container version {data.get('version')!r} (this reader knows {VERSION})"
            )
        try:
            model = ModelFingerprint.from_dict(data.get("model"))  # type: ignore[arg-type]
        except ValueError as exc:
            raise FormatError(str(exc)) from exc
        if data.get("model_id") != model.id:
            raise FormatError(f"model_id {data.get('model_id')!r} does not match the fingerprint")
        manifest = cls(
            codec=_need(data, "codec", dict),
            dtype=_need(data, "dtype", str),
            model=model,
            batch=_need(data, "batch", int),
            n_tokens=_need(data, "n_tokens", int),
            start_position=_need(data, "start_position", int),
            origin=_need(data, "origin", dict),
            created_at=_need(data, "created_at", str),
            token_chain=data.get("token_chain"),
            layers=_need(data, "layers", list),
            payload_sha256=_need(data, "payload_sha256", str),
        )
        manifest.check()
        return manifest

    def check(self) -> None:
        """Internal consistency (raises ``FormatError`` naming the first problem)."""
        name = self.codec.get("name")
        if name not in CODECS:
            raise FormatError(f"unknown codec {name!r:.40} (known: {CODECS})")
        fields = {"name"} if name == "raw" else {"name", "spec"}
        if set(self.codec) != fields:
            raise FormatError(f"codec {name!r} has exactly the fields {sorted(fields)}")
        if self.dtype not in DTYPES:
            raise FormatError(f"dtype {self.dtype!r:.40}: one of {DTYPES}")
        if self.batch < 1 or self.n_tokens < 0 or self.start_position < 0:
            raise FormatError(
                f"batch {self.batch}, n_tokens {self.n_tokens}, start_position "
                f"{self.start_position}: batch must be positive, the others non-negative"
            )
        if self.origin.get("kind") not in ORIGIN_KINDS:
            raise FormatError(f"origin.kind {self.origin.get('kind')!r:.40}: one of {ORIGIN_KINDS}")
        if self.payload_sha256 and not _HEX64.fullmatch(self.payload_sha256):
            raise FormatError("payload_sha256 must be 64 lowercase hex digits")
        if self.codec["name"] == "kvquant":
            self.spec  # noqa: B018 - parses and validates the spec
            if len(self.layers) != self.model.num_layers:
                raise FormatError(
                    f"{len(self.layers)} layer headers for a model of {self.model.num_layers}"
                )
        elif self.layers:
            raise FormatError("a raw container has no layer headers")
        self._check_chain()

    def _check_chain(self) -> None:
        chain = self.token_chain
        if chain is None:
            return
        if not isinstance(chain, dict) or set(chain) != {"chunk_tokens", "hashes"}:
            raise FormatError("token_chain must be {chunk_tokens, hashes} or null")
        size, hashes = chain["chunk_tokens"], chain["hashes"]
        if type(size) is not int or size < 1:
            raise FormatError("token_chain: chunk_tokens must be a positive integer")
        if not isinstance(hashes, list):
            raise FormatError("token_chain: hashes must be a list")
        if len(hashes) != -(-self.n_tokens // size):
            raise FormatError(
                f"token_chain has {len(hashes)} hashes; {self.n_tokens} tokens in chunks of "
                f"{size} need {-(-self.n_tokens // size)}"
            )
        if not all(isinstance(h, str) and _HEX64.fullmatch(h) for h in hashes):
            raise FormatError("token_chain.hashes must be 64-digit lowercase hex strings")

    def boundaries(self) -> list[tuple[int, str]]:
        """``(n, hash)`` of every recorded prefix (empty without a token chain)."""
        if self.token_chain is None:
            return []
        size = self.token_chain["chunk_tokens"]
        hashes = self.token_chain["hashes"]
        return [(min((i + 1) * size, self.n_tokens), h) for i, h in enumerate(hashes)]
