"""Everything a KV container must pass before it is stored, and the codec specs clients send.

In order, each before any work that depends on it: the spec's bounds, the file's structure and
every claim in its manifest against ``MEMSVC_KV__*`` (``kv_cartridges.limits``, checked before
anything is allocated for a claim), the data offsets and the checksum, the origin, then a
server-side re-encode when asked, and last the proof that every layer decodes to finite values
in the codec's range (``kv_cartridges.checks.check_values``). Any failure is a 4xx naming the
problem; nothing is stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kv_cartridges.checks import check_values
from kv_cartridges.format import (
    ContainerLimits,
    FormatError,
    KVContainer,
    LayerReader,
    read_manifest,
)
from kv_cartridges.manifest import Manifest
from kv_cartridges.manifest import resolve_spec as read_spec
from kv_cartridges.quant import LayerwiseSpec, QuantSpec
from kv_cartridges.tokens import DEFAULT_CHUNK_TOKENS
from memsvc.errors import InvalidRequestError
from memsvc.schemas import KVKind
from memsvc.service.deps import ServiceDeps

__all__ = ["Checked", "Spec", "check_file", "check_spec", "container_limits", "resolve_spec"]

Spec = QuantSpec | LayerwiseSpec
_LIMIT_FIELDS = {f.name for f in dataclasses.fields(ContainerLimits)}


def container_limits(deps: ServiceDeps) -> ContainerLimits:
    """The claims an uploaded container may make (``MEMSVC_KV__MAX_*``)."""
    return ContainerLimits(**deps.settings.kv.model_dump(include=_LIMIT_FIELDS))


def resolve_spec(spec: str | dict[str, Any] | Spec | None, field: str = "spec") -> Spec | None:
    """A codec spec from any form a caller may name it in (:func:`kv_cartridges.manifest.
    resolve_spec`, the SDK's reading too); a bad one is a 422 naming ``field``."""
    try:
        return read_spec(spec)
    except FormatError as exc:
        raise InvalidRequestError(f"{field}: {exc}", field=field) from exc


def check_spec(deps: ServiceDeps, spec: Spec, num_layers: int | None = None) -> None:
    """A spec within ``MEMSVC_KV__MAX_*`` (group size, kept tokens, override layers)."""
    try:
        container_limits(deps).check_spec(spec, "spec", num_layers=num_layers)
    except FormatError as exc:
        raise InvalidRequestError(str(exc), field="spec") from exc


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _check_origin(
    m: Manifest, kind: KVKind, session_id: str | None, episode_id: str | None
) -> None:
    origin = m.origin
    if kind == "cartridge":
        if origin.get("kind") != "cartridge":
            raise InvalidRequestError(
                f"origin.kind is {origin.get('kind')!r:.60}: a cartridge's origin must be "
                "'cartridge' (episodic caches go to PUT /v1/sessions/{id}/kv)",
                field="content",
            )
        return
    if origin.get("kind") != "session" or origin.get("session_id") != session_id:
        raise InvalidRequestError(
            f"origin {origin!r:.200} does not name session {session_id!r:.200}", field="content"
        )
    if origin.get("episode_id") != episode_id:
        raise InvalidRequestError(
            f"origin.episode_id {origin.get('episode_id')!r:.200} != episode_id "
            f"{episode_id!r:.200}",
            field="episode_id",
        )
    if m.token_chain is None:
        raise InvalidRequestError(
            "an episodic cache needs its token ids' hash chain (token_chain is null)",
            field="content",
        )


def _reencode(path: Path, manifest: Manifest, spec: Spec, out: Path) -> None:
    """Compress a raw container server-side (``spec`` given with raw fp16/bf16/fp32 tensors)."""
    if manifest.codec["name"] != "raw":
        raise InvalidRequestError(
            "spec given, but the container is already encoded "
            f"({manifest.codec['name']}); upload raw tensors to compress server-side",
            field="spec",
        )
    try:
        with LayerReader(path, verify=False) as layers:  # verified just before; one at a time
            built = KVContainer.build(
                layers,
                manifest.model,
                spec=spec,
                start_position=manifest.start_position,
                origin=manifest.origin,
            )
    except FormatError as exc:
        raise InvalidRequestError(f"content: {exc}", field="content") from exc
    built.manifest.token_chain = manifest.token_chain
    built.manifest.created_at = manifest.created_at
    built.write(out)


@dataclass
class Checked:
    """A container file that passed every check: its manifest, path, sha256 and size."""

    manifest: Manifest
    path: Path
    digest: str
    size: int


def _read(deps: ServiceDeps, path: Path, *, values: bool) -> Manifest:
    """The verified manifest of a file within the limits; with ``values``, also proven to
    decode to finite values in the codec's range."""
    try:
        manifest = read_manifest(
            path, max_bytes=deps.settings.kv.max_upload_bytes, limits=container_limits(deps)
        )
        if values:
            check_values(path, manifest)
    except FormatError as exc:
        raise InvalidRequestError(f"content: {exc}", field="content") from exc
    return manifest


def check_file(
    deps: ServiceDeps,
    path: Path,
    *,
    kind: KVKind,
    session_id: str | None,
    episode_id: str | None,
    spec: Spec | None,
    digest: str | None,
    cleanup: list[Path],
) -> Checked:
    """Every check of a container file to store (see the module docstring); with ``spec``,
    the file stored is a new one (appended to ``cleanup``), compressed from the upload."""
    if spec is not None:
        check_spec(deps, spec)
    manifest = _read(deps, path, values=True)
    _check_origin(manifest, kind, session_id, episode_id)
    chain = manifest.token_chain
    if chain is not None and chain["chunk_tokens"] != DEFAULT_CHUNK_TOKENS:
        raise InvalidRequestError(
            f"token_chain.chunk_tokens is {chain['chunk_tokens']}; the store indexes "
            f"chunks of {DEFAULT_CHUNK_TOKENS}",
            field="content",
        )
    if spec is not None:
        check_spec(deps, spec, manifest.model.num_layers)
        out = deps.blobs.new_tmp_file()
        cleanup.append(out)
        _reencode(path, manifest, spec, out)
        path, digest, manifest = out, None, _read(deps, out, values=True)
    return Checked(manifest, path, digest or _file_sha256(path), path.stat().st_size)
