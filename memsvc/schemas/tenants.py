"""Tenants and API keys (admin routes)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from memsvc.schemas.common import Strict

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ApiKeyRevoke",
    "ApiKeyRotate",
    "ApiKeyRotated",
    "TenantCreate",
    "TenantPublic",
]

# A week: long enough for any deployment to roll a new key out, short enough to matter.
_MAX_GRACE_SECONDS = 7 * 86_400


class TenantCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Optional stable id; generated when omitted.",
    )


class ApiKeyCreate(Strict):
    name: str = Field(default="", max_length=200, description="What the key is for.")


class TenantPublic(BaseModel):
    id: str
    name: str
    created_at: datetime


class ApiKeyPublic(BaseModel):
    id: str
    tenant_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """Returned once, at creation: ``key`` is never shown again (only its hash is stored)."""

    key: str


class ApiKeyRevoke(Strict):
    grace_seconds: float = Field(
        default=0.0,
        ge=0,
        le=_MAX_GRACE_SECONDS,
        description="Keep the key working this long (0: refuse it from now on).",
    )


class ApiKeyRotate(ApiKeyRevoke):
    name: str | None = Field(
        default=None, max_length=200, description="Name of the new key (default: the old one's)."
    )


class ApiKeyRotated(BaseModel):
    """The new key (``key`` shown only here) and the old one with its ``revoked_at``."""

    key: ApiKeyCreated
    revoked: ApiKeyPublic
