"""KV memory over time: composing cartridges, and the consolidation of episodic caches
(re-encode old ones at fewer bits, drop the least used past the tenant's retention budget).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import torch

from kv_cartridges.format import FormatError, KVContainer, LayerReader, read_container
from kv_cartridges.manifest import Manifest, parse_codec_spec
from kv_cartridges.quant import PRESETS, LayerwiseSpec, QuantSpec
from memsvc.errors import InvalidRequestError, NotFoundError
from memsvc.lifecycle.kv import KVCandidate, plan_drops, plan_reencode
from memsvc.schemas import CartridgeCompose, KVPublic
from memsvc.service.deps import ServiceDeps
from memsvc.service.kv import (
    bits_per_elem,
    container_limits,
    get_kv,
    load_container,
    open_content,
    save_cartridge,
)
from memsvc.service.kv_blobs import put_blob, release_blobs, sweep_blobs
from stores import kv as store
from stores.errors import DatabaseError
from stores.models import KVCacheRow, utcnow

__all__ = ["code_bits", "compose_cartridges", "consolidate_kv", "reencode_kv"]

log = logging.getLogger(__name__)


def code_bits(codec: dict[str, Any], dtype: str) -> float:
    """Bits per element of a stored cache's codes (raw: the dtype's width), mean of K and V."""
    if codec.get("name") != "kvquant":
        return 32.0 if dtype == "float32" else 16.0
    spec = parse_codec_spec(codec["spec"])
    base = spec.base if isinstance(spec, LayerwiseSpec) else spec
    return (base.k_bits + base.v_bits) / 2


def compose_cartridges(deps: ServiceDeps, tenant_id: str, request: CartridgeCompose) -> KVPublic:
    """One cartridge: the given ones concatenated along tokens, in order. Fingerprints must
    match; quantized inputs are decoded and the result re-encoded with the first one's spec."""
    found = [get_kv(deps, tenant_id, i, kind="cartridge") for i in request.ids]
    total = sum(c.n_tokens for c in found)
    if total > container_limits(deps).max_tokens:
        raise InvalidRequestError(
            f"the composed cartridge would hold {total} tokens; the limit is "
            f"{container_limits(deps).max_tokens} (MEMSVC_KV__MAX_TOKENS)",
            field="ids",
        )
    models = {c.model_id for c in found}
    if len(models) != 1:
        raise InvalidRequestError(
            f"cartridges of different models cannot be composed (fingerprints {sorted(models)})",
            field="ids",
        )
    if len({(c.dtype, c.model.get("num_kv_heads")) for c in found}) != 1:
        raise InvalidRequestError("cartridges differ in dtype", field="ids")
    containers = [
        load_container(deps, tenant_id, i, kind="cartridge", count_use=False) for i in request.ids
    ]
    batches = {c.manifest.batch for c in containers}
    if len(batches) != 1:
        raise InvalidRequestError(f"cartridges differ in batch size {sorted(batches)}", field="ids")
    layers = [c.layers() for c in containers]
    joined = [
        (torch.cat([ls[i][0] for ls in layers], 2), torch.cat([ls[i][1] for ls in layers], 2))
        for i in range(len(layers[0]))
    ]  # L x (B, H, sum T, D)
    first = containers[0].manifest
    origin = {"kind": "cartridge", "corpus_id": None, "composed_of": list(request.ids)}
    try:
        built = KVContainer.build(joined, first.model, spec=first.spec, origin=origin)
    except FormatError as exc:  # e.g. values the first one's codec cannot take
        raise InvalidRequestError(f"cannot compose these cartridges: {exc}", field="ids") from exc
    return save_cartridge(deps, tenant_id, built, name=request.name, metadata=request.metadata)


def _rebuild(layers: Sequence[Any], m: Manifest, spec: QuantSpec) -> KVContainer:
    built = KVContainer.build(
        layers, m.model, spec=spec, start_position=m.start_position, origin=m.origin
    )
    built.manifest.token_chain, built.manifest.created_at = m.token_chain, m.created_at
    return built


def _rebuilt(deps: ServiceDeps, row_id: str, tenant_id: str, spec: QuantSpec) -> KVContainer:
    """The stored cache re-encoded with ``spec``, decoded one layer at a time when the blob is
    a local file."""
    content = open_content(deps, tenant_id, row_id, count_use=False)
    with content.file as f:
        path = deps.blobs.local_path(content.kv.sha256)
        try:
            if path is not None:
                with LayerReader(path) as layers:
                    return _rebuild(layers, layers.manifest, spec)
        except FileNotFoundError:  # deleted meanwhile: the open file still has it
            container = read_container(f.read())
            return _rebuild(container.layers(), container.manifest, spec)
        # A remote blob (object store): streamed to a local file, then decoded layer by layer.
        copy = deps.blobs.spool(f)
    try:
        with LayerReader(copy) as layers:
            return _rebuild(layers, layers.manifest, spec)
    finally:
        copy.unlink(missing_ok=True)


def reencode_kv(deps: ServiceDeps, row_id: str, tenant_id: str, spec: QuantSpec) -> bool:
    """Re-encode one stored cache with ``spec`` in place (same id, new blob). False when the
    cache went away meanwhile or cannot be re-encoded (left as it is)."""
    try:
        built = _rebuilt(deps, row_id, tenant_id, spec)
    except NotFoundError:
        return False
    except FormatError as exc:
        log.warning("KV cache %s not re-encoded (left as it is): %s", row_id, exc)
        return False
    path = deps.blobs.new_tmp_file()
    try:
        digest = built.write(path)
        size = path.stat().st_size
        try:
            with deps.sessions.begin() as session:
                row = store.get_kv(tenant_id, row_id, session=session)
                if row is None:
                    return False
                old = row.blob_sha256
                row.blob_sha256, row.size_bytes = digest, size
                row.payload_sha256, row.codec = built.manifest.payload_sha256, built.manifest.codec
                row.bits_per_elem = bits_per_elem(built.manifest, size)
                put_blob(deps, path, digest, size, session=session)
        except DatabaseError:
            release_blobs(deps, [digest])  # put in by a transaction that did not commit
            raise
    finally:
        path.unlink(missing_ok=True)
    release_blobs(deps, [old])
    return True


def _candidates(rows: list[KVCacheRow]) -> list[KVCandidate]:
    return [
        KVCandidate(
            r.id,
            r.size_bytes,
            code_bits(r.codec, r.dtype),
            r.created_at,
            r.last_used_at,
            r.use_count,
        )
        for r in rows
    ]


def consolidate_kv(
    deps: ServiceDeps, *, tenant_id: str | None = None, now: datetime | None = None
) -> dict[str, int]:
    """The consolidation step for episodic caches (every tenant, or one): re-encode those
    unused for ``reencode_after_seconds`` at ``reencode_preset``, then drop the least used
    beyond each tenant's retention budget. Idempotent: a second run finds nothing to do."""
    config, now = deps.settings.kv, now or utcnow()
    spec = PRESETS[config.reencode_preset]
    with deps.sessions() as session:
        rows = store.episodic_rows(tenant_id, session=session)
        budgets = {}
        for t in {r.tenant_id for r in rows}:
            limits = store.get_limits(t, session=session)
            override = limits.retention_bytes if limits is not None else None
            budgets[t] = config.retention_bytes if override is None else override
    counts = {"kv_reencoded": 0, "kv_dropped": 0, "kv_blobs_collected": 0}
    by_tenant: dict[str, list[KVCacheRow]] = {}
    for r in rows:
        by_tenant.setdefault(r.tenant_id, []).append(r)
    for t, tenant_rows in by_tenant.items():
        target = (spec.k_bits + spec.v_bits) / 2
        for kv_id in plan_reencode(
            _candidates(tenant_rows),
            now=now,
            after_seconds=config.reencode_after_seconds,
            target_bits=target,
        ):
            counts["kv_reencoded"] += reencode_kv(deps, kv_id, t, spec)
        with deps.sessions() as session:
            fresh = store.episodic_rows(t, session=session)
        for kv_id in plan_drops(_candidates(fresh), budget_bytes=budgets[t]):
            with deps.sessions.begin() as session:
                row = store.get_kv(t, kv_id, session=session)
                if row is None:
                    continue
                digest = row.blob_sha256
                store.delete_kv(row, session=session)
            release_blobs(deps, [digest])
            counts["kv_dropped"] += 1
    if tenant_id is None:  # the whole store's pass: collect what no row points at
        counts["kv_blobs_collected"] = sweep_blobs(deps)
    return counts
