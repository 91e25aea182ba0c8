"""KV memory: stored KV containers (trained cartridges, episodic caches) and prefix lookup."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from memsvc.schemas.common import Metadata, ScopeId, Strict, UtcDatetime

__all__ = [
    "CartridgeCompose",
    "KVKind",
    "KVLimits",
    "KVLimitsPublic",
    "KVLookupRequest",
    "KVLookupResult",
    "KVPublic",
]

KVKind = Literal["cartridge", "episodic"]


class KVPublic(BaseModel):
    """A stored KV container: what its manifest says, and how it is stored and used."""

    id: str
    kind: KVKind
    name: str | None = None
    model_id: str = Field(description="The model fingerprint's id (filter and lookup key).")
    model: dict[str, Any] = Field(description="The model fingerprint (architecture, shapes...).")
    codec: dict[str, Any] = Field(description='{"name": "raw"} or {"name": "kvquant", "spec"}.')
    dtype: str
    n_tokens: int
    start_position: int
    bits_per_elem: float = Field(description="Stored tensor bits per K/V element.")
    origin: dict[str, Any]
    session_id: str | None = None
    episode_id: str | None = None
    corpus_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    sha256: str = Field(description="sha256 of the container file (its content address).")
    payload_sha256: str
    size_bytes: int
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None = None
    use_count: int = 0


class KVLookupRequest(Strict):
    """Which stored cache covers the longest prefix of these tokens, for this model."""

    model_id: str = Field(min_length=1, max_length=64, description="ModelFingerprint.id")
    token_ids: list[int] = Field(max_length=4_000_000)


class KVLookupResult(BaseModel):
    """The best match: ``n_tokens`` of the query are covered by the cache ``kv`` (which may
    hold more; load its first ``n_tokens``). ``kv`` is null when nothing matches."""

    n_tokens: int = 0
    kv: KVPublic | None = None


class CartridgeCompose(Strict):
    """Concatenate cartridges along tokens, in order (every fingerprint must match)."""

    ids: list[str] = Field(min_length=2, max_length=64)
    name: ScopeId | None = None
    metadata: Metadata = Field(default_factory=dict)


class KVLimits(Strict):
    """A tenant's KV overrides; ``null`` means the settings' default
    (``MEMSVC_KV__QUOTA_BYTES``, ``MEMSVC_KV__RETENTION_BYTES``)."""

    quota_bytes: int | None = Field(
        default=None, ge=0, le=2**62, description="Every KV container of the tenant, stored."
    )
    retention_bytes: int | None = Field(
        default=None, ge=0, le=2**62, description="Episodic caches kept (least used dropped)."
    )


class KVLimitsPublic(KVLimits):
    """The overrides, and what applies."""

    tenant_id: str
    effective_quota_bytes: int
    effective_retention_bytes: int
    used_bytes: int = Field(description="Bytes stored now (every container).")
