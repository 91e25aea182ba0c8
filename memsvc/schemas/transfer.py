"""Exports over REST: what ``POST /v1/exports`` takes (the job it returns is a JobPublic)."""

from __future__ import annotations

from pydantic import Field

from memsvc.schemas.common import ScopeId, Strict

__all__ = ["ExportRequest"]


class ExportRequest(Strict):
    user_id: ScopeId | None = Field(
        default=None, description="Only this user of the tenant (default: the whole tenant)."
    )
