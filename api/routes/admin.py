"""``/v1/admin``: tenants and their API keys: issue, list, revoke, rotate (admin key only)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import AdminDep, ServiceDep
from api.idempotency import reply_not_stored
from memsvc.schemas import ApiKeyCreated, ApiKeyPublic, ListEnvelope, TenantCreate, TenantPublic

router = APIRouter(prefix="/admin", tags=["admin"])

# A week: long enough for any deployment to roll the new key out, short enough to matter.
_MAX_GRACE_SECONDS = 7 * 86_400


class ApiKeyCreate(BaseModel):
    name: str = Field(default="", max_length=200)


class ApiKeyRevoke(BaseModel):
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


@router.post("/tenants", status_code=201)
def create_tenant(body: TenantCreate, _: AdminDep, service: ServiceDep) -> TenantPublic:
    return service.create_tenant(body.name, body.id)


@router.get("/tenants")
def list_tenants(_: AdminDep, service: ServiceDep) -> ListEnvelope[TenantPublic]:
    tenants = service.list_tenants()
    return ListEnvelope(data=tenants, count=len(tenants))


@router.post("/tenants/{tenant_id}/keys", status_code=201)
@reply_not_stored  # the raw key is never stored, so an Idempotency-Key cannot replay it
def create_key(
    tenant_id: str, body: ApiKeyCreate, _: AdminDep, service: ServiceDep
) -> ApiKeyCreated:
    """A new key for the tenant; the ``key`` field is shown only in this response."""
    return service.create_api_key(tenant_id, body.name)


@router.get("/tenants/{tenant_id}/keys")
def list_keys(tenant_id: str, _: AdminDep, service: ServiceDep) -> ListEnvelope[ApiKeyPublic]:
    """Every key of the tenant with its ``revoked_at`` (revoked keys stay listed)."""
    keys = service.list_api_keys(tenant_id)
    return ListEnvelope(data=keys, count=len(keys))


@router.post("/tenants/{tenant_id}/keys/{key_id}/revoke")
def revoke_key(
    tenant_id: str,
    key_id: str,
    _: AdminDep,
    service: ServiceDep,
    body: ApiKeyRevoke | None = None,
) -> ApiKeyPublic:
    """Revoke a key: refused by this replica at once, by every replica within
    ``MEMSVC_AUTH_CACHE_SECONDS`` (of ``revoked_at``, with a grace period)."""
    grace = body.grace_seconds if body is not None else 0.0
    return service.revoke_api_key(tenant_id, key_id, grace_seconds=grace)


@router.post("/tenants/{tenant_id}/keys/{key_id}/rotate", status_code=201)
@reply_not_stored  # the new raw key is never stored
def rotate_key(
    tenant_id: str,
    key_id: str,
    _: AdminDep,
    service: ServiceDep,
    body: ApiKeyRotate | None = None,
) -> ApiKeyRotated:
    """Issue a new key and revoke this one, at once or after ``grace_seconds``."""
    body = body or ApiKeyRotate()
    new, old = service.rotate_api_key(
        tenant_id, key_id, grace_seconds=body.grace_seconds, name=body.name
    )
    return ApiKeyRotated(key=new, revoked=old)
