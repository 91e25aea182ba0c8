"""KV memory settings (``MEMSVC_KV__*``): blobs, quota, retention, upload and claim limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

__all__ = ["INT32_MAX", "GiB", "KVConfig", "MiB"]

MiB = 1 << 20
GiB = 1 << 30
INT32_MAX = 2**31 - 1  # SQL INTEGER columns; also the RoPE position limit of the codec


class KVConfig(BaseModel):
    """``MEMSVC_KV__<NAME>`` in the environment."""

    # Blob directory of the local store (default: <data_dir>/blobs).
    blob_dir: Path | None = None
    # Per-tenant storage for every KV container (cartridges + episodic); kv_limits overrides.
    quota_bytes: int = Field(default=20 * GiB, ge=0)
    # The largest container one request may upload (streamed to disk, never held in RAM).
    max_upload_bytes: int = Field(default=8 * GiB, ge=1)
    # Per-tenant budget of episodic caches; consolidation drops the least used beyond it.
    retention_bytes: int = Field(default=4 * GiB, ge=0)
    # Episodic caches unused this long are re-encoded at ``reencode_preset`` (fewer bits).
    reencode_after_seconds: float = Field(default=86_400.0, ge=0)
    reencode_preset: str = "compact"
    # The largest claims an uploaded container (or ?spec=) may make, checked before anything
    # is allocated for them (kv_cartridges.limits.ContainerLimits); 422 beyond. The body's
    # size bounds them too: every tensor must be in the file, byte for byte.
    max_header_bytes: int = Field(default=4 * MiB, ge=1024, le=64 * MiB)
    max_layers: int = Field(default=512, ge=1)
    max_batch: int = Field(default=64, ge=1)
    max_kv_heads: int = Field(default=256, ge=1)
    max_head_dim: int = Field(default=1024, ge=1)
    max_tokens: int = Field(default=262_144, ge=1, le=INT32_MAX)  # kv_caches.n_tokens
    max_start_position: int = Field(default=INT32_MAX, ge=0, le=INT32_MAX)  # and RoPE's
    max_group_size: int = Field(default=4096, ge=1)
    max_sink_tokens: int = Field(default=1024, ge=0)
    max_window_tokens: int = Field(default=65_536, ge=0)
    # Blob collection: temporary upload files older than this are removed by the sweep.
    tmp_max_age_seconds: float = Field(default=86_400.0, gt=0)
