"""Tenants and API keys. Persistence only: keys arrive here already hashed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from stores.models import ApiKey, Tenant

__all__ = [
    "add_key",
    "add_tenant",
    "get_key",
    "get_tenant",
    "key_by_hash",
    "keys_of",
    "list_tenants",
    "revoke_key",
]


def get_tenant(tenant_id: str, *, session: Session) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def add_tenant(tenant: Tenant, *, session: Session) -> Tenant:
    session.add(tenant)
    return tenant


def list_tenants(*, session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id)))


def add_key(key: ApiKey, *, session: Session) -> ApiKey:
    session.add(key)
    return key


def key_by_hash(key_hash: str, *, session: Session) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.key_hash == key_hash)
    return session.scalars(stmt).first()


def get_key(tenant_id: str, key_id: str, *, session: Session) -> ApiKey | None:
    """A key of the tenant, locked for update (revocation and rotation change it)."""
    stmt = (
        select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id).with_for_update()
    )
    return session.scalars(stmt).first()


def keys_of(tenant_id: str, *, session: Session) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
    return list(session.scalars(stmt))


def revoke_key(key: ApiKey, at: datetime, *, session: Session) -> None:
    key.revoked_at = at
    session.add(key)
