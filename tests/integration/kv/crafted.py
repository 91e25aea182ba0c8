"""Crafting KV containers: a valid one taken apart (header entries, manifest, data section),
edited, and put back together with a correct checksum, so the check that refuses it is the
one a test aims at."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import torch

from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.format import KVContainer
from kv_cartridges.quant import QuantSpec

FP = ModelFingerprint("LlamaForCausalLM", 2, 2, 16, 128, {"rope_theta": 10000.0}, "0" * 64)


def container(spec: QuantSpec | None = None, *, T: int = 80, seed: int = 0,
              origin: dict | None = None, token_ids: list[int] | None = None) -> bytes:  # fmt: skip
    """A valid container of random K/V for :data:`FP` (2 layers, 2 heads of 16)."""
    g = torch.Generator().manual_seed(seed)
    layers = [(torch.randn(1, 2, T, 16, generator=g), torch.randn(1, 2, T, 16, generator=g))
              for _ in range(FP.num_layers)]  # fmt: skip
    return KVContainer.build(
        layers, FP, spec=spec, token_ids=token_ids,
        origin=origin or {"kind": "cartridge", "corpus_id": "c"},
    ).to_bytes()  # fmt: skip


def split(body: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """(tensor entries, manifest, data section) of a container."""
    n = int.from_bytes(body[:8], "little")
    header = json.loads(body[8 : 8 + n])
    manifest = json.loads(header.pop("__metadata__")["memsvc.kv"])
    return header, manifest, body[8 + n :]


def join(header: dict[str, Any], metadata: Any, data: bytes) -> bytes:
    raw = json.dumps({"__metadata__": metadata, **header}).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def craft(
    body: bytes,
    *,
    manifest: Callable[[dict[str, Any]], object] | None = None,
    entries: Callable[[dict[str, Any]], object] | None = None,
    data: Callable[[bytearray, dict[str, Any]], object] | None = None,
) -> bytes:
    """``body`` with its manifest, tensor entries and/or data edited in place by the given
    functions, and ``payload_sha256`` recomputed for the new data."""
    header, m, payload = split(body)
    if entries is not None:
        entries(header)
    buffer = bytearray(payload)
    if data is not None:
        data(buffer, header)
    m["payload_sha256"] = hashlib.sha256(buffer).hexdigest()
    if manifest is not None:
        manifest(m)
    return join(header, {"memsvc.kv": json.dumps(m)}, bytes(buffer))


def set_model(m: dict[str, Any], **changes: Any) -> None:
    """Change fingerprint fields of a manifest and its ``model_id`` with them."""
    m["model"].update(changes)
    m["model_id"] = ModelFingerprint(**m["model"]).id


def put_float(buffer: bytearray, header: dict[str, Any], name: str, value: float) -> None:
    """Overwrite the first element of tensor ``name`` (F32 or F16) with ``value``."""
    entry = header[name]
    at = entry["data_offsets"][0]
    dtype = {"F32": torch.float32, "F16": torch.float16}[entry["dtype"]]
    raw = torch.tensor([value], dtype=dtype).view(torch.uint8).tolist()
    buffer[at : at + len(raw)] = bytes(raw)
