"""``/v1/admin``: tenants and their API keys (admin key only)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from api.deps import AdminDep, ServiceDep
from memsvc.schemas import ApiKeyCreated, ApiKeyPublic, ListEnvelope, TenantCreate, TenantPublic
from memsvc.schemas.common import Strict

router = APIRouter(prefix="/admin", tags=["admin"])


class ApiKeyCreate(Strict):
    name: str = Field(default="", max_length=200)


@router.post("/tenants", status_code=201)
def create_tenant(body: TenantCreate, _: AdminDep, service: ServiceDep) -> TenantPublic:
    return service.create_tenant(body.name, body.id)


@router.get("/tenants")
def list_tenants(_: AdminDep, service: ServiceDep) -> ListEnvelope[TenantPublic]:
    tenants = service.list_tenants()
    return ListEnvelope(data=tenants, count=len(tenants))


@router.post("/tenants/{tenant_id}/keys", status_code=201)
def create_key(
    tenant_id: str, body: ApiKeyCreate, _: AdminDep, service: ServiceDep
) -> ApiKeyCreated:
    """A new key for the tenant; the ``key`` field is shown only in this response."""
    return service.create_api_key(tenant_id, body.name)


@router.get("/tenants/{tenant_id}/keys")
def list_keys(tenant_id: str, _: AdminDep, service: ServiceDep) -> ListEnvelope[ApiKeyPublic]:
    keys = service.list_api_keys(tenant_id)
    return ListEnvelope(data=keys, count=len(keys))
