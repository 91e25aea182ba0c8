"""The KV container: one safetensors file with every layer's K and V and a JSON manifest.

    container = KVContainer.build(layers, fingerprint, spec=QuantSpec(), token_ids=ids,
                                  origin={"kind": "session", "session_id": "s1"})
    digest = container.write(path)          # sha256 of the file (its content address)
    again = read_container(path)            # verified: sizes, manifest, shapes, checksum
    layers = again.layers()                 # [(k, v)] per layer, [B, H, T, D], decoded

Tensors: ``layers.{i}.k`` / ``layers.{i}.v`` (raw codec, the cache's dtype) or
``layers.{i}.`` + the :class:`~kv_cartridges.quant.PackedKV` names (kvquant codec). The manifest
(:mod:`kv_cartridges.manifest`) is the metadata key ``memsvc.kv``; its ``payload_sha256`` is the
sha256 of the file's data section (every byte after the header). Nothing is pickled: the reader
parses the header itself, checks it against the manifest, then lets safetensors map the data.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from safetensors.torch import save_file

from kv_cartridges.checks import ST_DTYPES, check_offsets
from kv_cartridges.fingerprint import ModelFingerprint
from kv_cartridges.limits import MAX_HEADER_BYTES, ContainerLimits
from kv_cartridges.manifest import DTYPES, FORMAT, VERSION, FormatError, Manifest
from kv_cartridges.quant import (
    LayerwiseSpec,
    PackedKV,
    QuantError,
    QuantSpec,
    decode,
    encode,
    expected_tensors,
    spec_for_layer,
)
from kv_cartridges.quant.packed import FORMAT as PACKED_FORMAT
from kv_cartridges.quant.packed import VERSIONS as PACKED_VERSIONS
from kv_cartridges.quant.packed import loads_strict
from kv_cartridges.tokens import DEFAULT_CHUNK_TOKENS, chain

__all__ = [
    "FORMAT",
    "MANIFEST_KEY",
    "VERSION",
    "ContainerLimits",
    "FormatError",
    "KVContainer",
    "LayerReader",
    "Manifest",
    "read_container",
    "read_manifest",
]

MANIFEST_KEY = "memsvc.kv"
_PLACEHOLDER = "f" * 64  # payload_sha256 while writing; patched in place (same length)
_TORCH = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (k, v), each [B, H, T, D]
Source = str | os.PathLike[str] | bytes


@dataclass
class KVContainer:
    manifest: Manifest
    tensors: dict[str, torch.Tensor]  # flat names (module docstring) -> tensors

    @classmethod
    def build(
        cls,
        layers: Sequence[tuple[torch.Tensor, torch.Tensor]],
        model: ModelFingerprint,
        *,
        spec: QuantSpec | LayerwiseSpec | None = None,
        token_ids: Sequence[int] | None = None,
        start_position: int = 0,
        origin: dict[str, Any],
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    ) -> KVContainer:
        """Encode per-layer ``(k, v)`` with ``spec`` (None: stored raw, lossless). Each layer is
        read once, checked, then encoded: ``layers`` may load them lazily (:class:`LayerReader`)."""
        L, H, D = model.num_layers, model.num_kv_heads, model.head_dim
        if len(layers) != L:
            raise FormatError(f"{len(layers)} layers given; the model has {L}")
        tensors: dict[str, torch.Tensor] = {}
        headers: list[dict[str, Any]] = []
        try:
            key_rope = None if spec is None else model.key_rope(start_position)
        except QuantError as exc:
            raise FormatError(f"start_position: {exc}") from exc
        B = T = dtype = None
        for i in range(L):
            k, v = layers[i]
            if B is None:
                B, _, T, _ = k.shape
                dtype = str(k.dtype).removeprefix("torch.")
            if tuple(k.shape) != (B, H, T, D) or tuple(v.shape) != (B, H, T, D):
                raise FormatError(
                    f"layer {i}: k {list(k.shape)}, v {list(v.shape)}; the model needs "
                    f"[{B}, {H}, {T}, {D}] each"
                )
            if dtype not in DTYPES or {str(k.dtype), str(v.dtype)} != {f"torch.{dtype}"}:
                raise FormatError(f"layer {i}: tensors must all be one dtype of {DTYPES}")
            if spec is None:
                tensors[f"layers.{i}.k"], tensors[f"layers.{i}.v"] = k.detach(), v.detach()
                continue
            try:
                packed = encode(k.detach(), v.detach(), spec_for_layer(spec, i), key_rope=key_rope)
            except QuantError as exc:
                raise FormatError(f"layer {i}: {exc}") from exc
            flat, header = packed.to_flat(f"layers.{i}.")
            tensors.update(flat)
            headers.append(header)
        assert B is not None and T is not None and dtype is not None, "no layers"
        if token_ids is not None and len(token_ids) != T:
            raise FormatError(f"{len(token_ids)} token ids for a cache of {T} tokens")
        codec = {"name": "raw"} if spec is None else {"name": "kvquant", "spec": spec.to_dict()}
        hashes = None if token_ids is None else [h for _, h in chain(token_ids, chunk_tokens)]
        manifest = Manifest(
            codec=codec,
            dtype=dtype,
            model=model,
            batch=int(B),
            n_tokens=int(T),
            start_position=start_position,
            origin=dict(origin),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            token_chain=None
            if hashes is None
            else {"chunk_tokens": chunk_tokens, "hashes": hashes},
            layers=headers,
        )
        manifest.check()
        return cls(manifest, tensors)

    def layers(self) -> KV:
        """Every layer's ``(k, v)`` decoded, ``[B, H, T, D]`` in the manifest's dtype."""
        out: KV = []
        for i in range(self.manifest.model.num_layers):
            if self.manifest.codec["name"] == "raw":
                out.append((self.tensors[f"layers.{i}.k"], self.tensors[f"layers.{i}.v"]))
                continue
            packed = PackedKV.from_flat(self.tensors, self.manifest.layers[i], f"layers.{i}.")
            out.append(decode(packed))
        return out

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data (the file adds its header)."""
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    @property
    def bits_per_element(self) -> float:
        m = self.manifest
        numel = (
            2 * m.model.num_layers * m.batch * m.model.num_kv_heads * m.n_tokens * m.model.head_dim
        )
        return 8 * self.nbytes / max(numel, 1)

    def _metadata(self) -> dict[str, str]:
        manifest = self.manifest.to_dict() | {"payload_sha256": _PLACEHOLDER}
        return {MANIFEST_KEY: json.dumps(manifest, sort_keys=True, separators=(",", ":"))}

    def _contiguous(self) -> dict[str, torch.Tensor]:
        return {n: t.contiguous() for n, t in self.tensors.items()}

    def to_bytes(self) -> bytes:
        """The container file as bytes (see :meth:`write` for large caches)."""
        blob = bytearray(st_save(self._contiguous(), metadata=self._metadata()))
        n = int.from_bytes(blob[:8], "little")
        digest = hashlib.sha256(memoryview(blob)[8 + n :]).hexdigest()
        at = _placeholder_at(bytes(blob[8 : 8 + n]))
        blob[8 + at : 8 + at + 64] = digest.encode()
        self.manifest.payload_sha256 = digest
        return bytes(blob)

    def write(self, path: str | os.PathLike[str]) -> str:
        """Write the container file; returns the sha256 of the whole file."""
        save_file(self._contiguous(), os.fspath(path), metadata=self._metadata())
        with open(path, "r+b") as f:
            n = int.from_bytes(f.read(8), "little")
            at = _placeholder_at(f.read(n))
            digest = _hash_stream(f)
            f.seek(8 + at)
            f.write(digest.encode())
        self.manifest.payload_sha256 = digest
        with open(path, "rb") as f:
            return _hash_stream(f)


def _placeholder_at(header: bytes) -> int:
    at = header.rfind(b'payload_sha256\\":\\"' + _PLACEHOLDER.encode())
    assert at >= 0, "payload_sha256 placeholder missing from the written header"
    return at + len(b'payload_sha256\\":\\"')


def _hash_stream(f: BinaryIO, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    while block := f.read(chunk):
        h.update(block)
    return h.hexdigest()


def _open(source: Source) -> tuple[BinaryIO, int]:
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(source), len(source)
    f = open(source, "rb")  # noqa: SIM115 - closed by the caller
    return f, os.fstat(f.fileno()).st_size


def _header(
    f: BinaryIO, size: int, max_bytes: int | None, limits: ContainerLimits | None
) -> tuple[dict[str, Any], int]:
    if max_bytes is not None and size > max_bytes:
        raise FormatError(f"oversized: {size} bytes, the limit is {max_bytes}")
    if size < 8:
        raise FormatError(f"truncated: {size} bytes; a container starts with an 8-byte length")
    n = int.from_bytes(f.read(8), "little")
    max_header = MAX_HEADER_BYTES if limits is None else limits.max_header_bytes
    if n > max_header:
        raise FormatError(f"header of {n} bytes exceeds {max_header}: not a container")
    if 8 + n > size:
        raise FormatError(f"truncated: the header needs {n} bytes, {size - 8} follow")
    try:
        header = loads_strict(f.read(n))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"the safetensors header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise FormatError("the safetensors header is not a JSON object")
    return header, n


def _manifest(header: dict[str, Any], limits: ContainerLimits | None) -> Manifest:
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or MANIFEST_KEY not in meta:
        raise FormatError(f"no {MANIFEST_KEY!r} manifest in the safetensors metadata")
    if not all(isinstance(v, str) for v in meta.values()):
        raise FormatError("safetensors metadata values must be strings")
    try:
        manifest = Manifest.from_dict(loads_strict(meta[MANIFEST_KEY]))
    except (ValueError, RecursionError) as exc:
        raise FormatError(str(exc) if isinstance(exc, FormatError) else f"manifest: {exc}") from exc
    if limits is not None:
        limits.check_manifest(manifest)
    return manifest


def _parse(
    f: BinaryIO, size: int, max_bytes: int | None, limits: ContainerLimits | None
) -> tuple[Manifest, int]:
    header, n = _header(f, size, max_bytes, limits)
    manifest = _manifest(header, limits)
    # every loop below is over the layers; the header bounds them before any is built
    per_layer = 2 if manifest.codec["name"] == "raw" else 6
    if manifest.model.num_layers * per_layer > len(header):
        raise FormatError(
            f"the manifest claims {manifest.model.num_layers} layers; the file holds "
            f"{len(header)} tensors, too few for them"
        )
    check_offsets(header, size - 8 - n)
    _check_tensors(manifest, header)
    return manifest, n


def _layer_tensors(m: Manifest, i: int, spec: QuantSpec) -> dict[str, Any]:
    """The tensors layer ``i``'s kvquant header implies, once the header agrees with the
    manifest: its shape, dtype, spec (the codec's for this layer) and kept tokens."""
    h, shape = m.layers[i], [m.batch, m.model.num_kv_heads, m.n_tokens, m.model.head_dim]
    if not isinstance(h, dict):
        raise FormatError(f"layer {i}: the header is not an object")
    if h.get("format") != PACKED_FORMAT or h.get("version") not in PACKED_VERSIONS:
        raise FormatError(f"layer {i}: not a {PACKED_FORMAT} header of version {PACKED_VERSIONS}")
    got = h.get("shape")
    if not isinstance(got, list) or [type(n) for n in got] != [int] * 4 or got != shape:
        raise FormatError(f"layer {i} header shape {got!r:.80} != manifest {shape}")
    if h.get("dtype") != m.dtype:
        raise FormatError(f"layer {i} header dtype {h.get('dtype')!r:.40} != manifest {m.dtype!r}")
    if h.get("spec") != spec.to_dict():
        raise FormatError(f"layer {i} header spec differs from the codec's spec for the layer")
    S = min(spec.sink_tokens, m.n_tokens)
    W = min(spec.window_tokens, m.n_tokens - S)
    kept = (h.get("sink"), h.get("window"))
    if [type(n) for n in kept] != [int, int] or kept != (S, W):
        raise FormatError(f"layer {i}: sink/window {h.get('sink')!r:.20}/{h.get('window')!r:.20}"
                          f" != {S}/{W} from the spec")  # fmt: skip
    try:
        want = expected_tensors(h)
    except QuantError as exc:
        raise FormatError(f"layer {i}: {exc}") from exc
    if "key_rope" in h and h["key_rope"]["start"] != m.start_position:
        raise FormatError(f"layer {i}: key_rope starts at {h['key_rope']['start']}, the cache at "
                          f"{m.start_position}")  # fmt: skip
    return want


def _expected(m: Manifest) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    want: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
    shape = (m.batch, m.model.num_kv_heads, m.n_tokens, m.model.head_dim)
    spec = m.spec
    for i in range(m.model.num_layers):
        if spec is None:
            want[f"layers.{i}.k"] = want[f"layers.{i}.v"] = (shape, _TORCH[m.dtype])
            continue
        for name, expected in _layer_tensors(m, i, spec_for_layer(spec, i)).items():
            want[f"layers.{i}.{name}"] = expected
    return want


def _check_tensors(m: Manifest, header: dict[str, Any]) -> None:
    want = _expected(m)
    missing, extra = sorted(set(want) - set(header)), sorted(set(header) - set(want))
    if missing or extra:
        raise FormatError(f"tensors disagree with the manifest: missing {missing[:5]}, "
                          f"unexpected {[n[:80] for n in extra[:5]]}")  # fmt: skip
    for name, (shape, dtype) in want.items():
        got_shape, got_dtype = tuple(header[name]["shape"]), header[name]["dtype"]
        if got_shape != shape or ST_DTYPES[got_dtype] != dtype:
            raise FormatError(
                f"tensor {name} is {got_dtype} {list(got_shape)}; the manifest implies "
                f"{str(dtype).removeprefix('torch.')} {list(shape)}"
            )


def _verify(f: BinaryIO, manifest: Manifest, n: int) -> None:
    f.seek(8 + n)
    digest = _hash_stream(f)
    if digest != manifest.payload_sha256:
        raise FormatError(
            f"checksum mismatch: payload sha256 is {digest}, the manifest says "
            f"{manifest.payload_sha256}"
        )


def read_manifest(
    source: Source,
    *,
    verify: bool = True,
    max_bytes: int | None = None,
    limits: ContainerLimits | None = None,
) -> Manifest:
    """The manifest of a container, after every structural check (and the checksum unless
    ``verify=False``); no tensor is loaded. ``limits`` bounds what the manifest may claim
    (without, only what the file itself implies is)."""
    f, size = _open(source)
    with f:
        manifest, n = _parse(f, size, max_bytes, limits)
        if verify:
            _verify(f, manifest, n)
    return manifest


def read_container(
    source: Source,
    *,
    verify: bool = True,
    max_bytes: int | None = None,
    limits: ContainerLimits | None = None,
) -> KVContainer:
    """A verified container with every tensor loaded (see :class:`LayerReader` to go one
    layer at a time)."""
    manifest = read_manifest(source, verify=verify, max_bytes=max_bytes, limits=limits)
    try:
        if isinstance(source, (bytes, bytearray)):
            tensors = st_load(bytes(source))
        else:
            with safe_open(os.fspath(source), framework="pt") as st:
                tensors = {name: st.get_tensor(name) for name in st.keys()}  # noqa: SIM118
    except SafetensorError as exc:
        raise FormatError(f"safetensors refused the file: {exc}") from exc
    return KVContainer(manifest, tensors)


class LayerReader(Sequence[tuple[torch.Tensor, torch.Tensor]]):
    """The decoded layers of a container file, read from its memory map one layer at a time, so
    re-encoding a large cache never holds all of it (``reader[i]`` is layer ``i``'s ``(k, v)``).

    Verified like :func:`read_container`; close it (or use ``with``) when done.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        verify: bool = True,
        limits: ContainerLimits | None = None,
    ) -> None:
        self.manifest = read_manifest(path, verify=verify, limits=limits)
        try:
            self._st = safe_open(os.fspath(path), framework="pt")
        except SafetensorError as exc:
            raise FormatError(f"safetensors refused the file: {exc}") from exc

    def __len__(self) -> int:
        return self.manifest.model.num_layers

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        if not isinstance(i, int) or not 0 <= i < len(self):
            raise IndexError(f"layer {i} of {len(self)}")
        prefix = f"layers.{i}."
        if self.manifest.codec["name"] == "raw":
            return self._st.get_tensor(prefix + "k"), self._st.get_tensor(prefix + "v")
        header = self.manifest.layers[i]
        names = [prefix + n for n in expected_tensors(header)]
        tensors = {n: self._st.get_tensor(n) for n in names}
        return decode(PackedKV.from_flat(tensors, header, prefix))

    def close(self) -> None:
        self._st = None

    def __enter__(self) -> LayerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
