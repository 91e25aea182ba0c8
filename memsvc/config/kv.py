"""KV memory settings (``MEMSVC_KV__*``): blob directory, quota, retention, upload limit."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

__all__ = ["GiB", "KVConfig"]

GiB = 1 << 30


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
