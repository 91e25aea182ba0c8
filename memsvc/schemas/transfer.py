"""Exports over REST: what ``POST /v1/exports`` takes (the job it returns is a JobPublic)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from memsvc.schemas.common import ScopeId, Strict

__all__ = ["ExportRequest", "ImportResult"]


class ExportRequest(Strict):
    user_id: ScopeId | None = Field(
        default=None, description="Only this user of the tenant (default: the whole tenant)."
    )


class ImportResult(BaseModel):
    """What an import did: rows inserted and skipped (same content) per table, and conflicts
    (same id, different content: left as they are, never merged)."""

    inserted: dict[str, int]
    skipped: dict[str, int]
    conflicts: list[dict[str, str]]
