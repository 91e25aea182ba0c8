"""Purge: the query of ``DELETE /v1/{users,agents,sessions}/{id}`` and what it answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from memsvc.schemas.common import Strict

__all__ = ["PurgeCounts", "PurgeParams", "PurgeResult", "PurgeScope"]

PurgeScope = Literal["user", "agent", "session"]


class PurgeParams(Strict):
    purge: bool = Field(
        default=False,
        description="Must be true: erase every trace of the scope (docs/security.md, Purge). "
        "A soft delete of a scope's memories is ``DELETE /v1/memories?user_id=...``.",
    )


class PurgeCounts(BaseModel):
    """How many of each thing the purge erased."""

    memories: int = 0
    history: int = 0
    events: int = 0
    sessions: int = 0
    entities: int = 0
    relations: int = 0
    jobs: int = 0
    kv_caches: int = 0
    kv_blobs_kept_shared: int = 0
    idempotent_replies: int = 0
    webhook_deliveries: int = 0
    working_memory_sessions: int = 0


class PurgeResult(BaseModel):
    """The purge's audit record (``purge_audit``): counts, never content."""

    audit_id: str
    scope: PurgeScope
    scope_sha256: str = Field(description="sha256 of the scope's id (the id itself is not kept).")
    purged_at: datetime
    counts: PurgeCounts
    reclaimed: str = Field(description="What was done so the bytes leave the database files.")
