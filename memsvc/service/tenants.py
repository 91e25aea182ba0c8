"""Tenants, API keys and authentication."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from memsvc.errors import AuthError, ConflictError, NotFoundError
from memsvc.schemas import ApiKeyCreated, ApiKeyPublic, TenantPublic
from memsvc.service.deps import ServiceDeps
from stores import tenants as store
from stores.errors import IntegrityError
from stores.models import ApiKey, Tenant, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "LOCAL_TENANT_ID",
    "Authenticator",
    "Principal",
    "create_api_key",
    "create_tenant",
    "ensure_local_key",
    "hash_key",
    "list_api_keys",
    "list_tenants",
    "revoke_api_key",
    "rotate_api_key",
]

LOCAL_TENANT_ID = "local"
KEY_PREFIX = "msk_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant's key, or the bootstrap admin (no tenant)."""

    tenant_id: str | None
    key_id: str
    is_admin: bool = False
    # Who history records as the actor; the key (``key:<id>``) unless named (the embedded
    # ``Memory`` names its own).
    name: str | None = None

    @property
    def actor(self) -> str:
        return self.name or f"key:{self.key_id}"


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _tenant_public(tenant: Tenant) -> TenantPublic:
    return TenantPublic(id=tenant.id, name=tenant.name, created_at=tenant.created_at)


def create_tenant(deps: ServiceDeps, name: str, tenant_id: str | None = None) -> TenantPublic:
    tenant = Tenant(id=tenant_id or uuid.uuid4().hex, name=name, created_at=utcnow())
    try:
        with deps.sessions.begin() as session:
            if store.get_tenant(tenant.id, session=session) is not None:
                raise ConflictError(f"tenant {tenant.id} already exists", field="id")
            store.add_tenant(tenant, session=session)
    except IntegrityError as exc:  # created concurrently by another process
        raise ConflictError(f"tenant {tenant.id} already exists", field="id") from exc
    return _tenant_public(tenant)


def list_tenants(deps: ServiceDeps) -> list[TenantPublic]:
    with deps.sessions() as session:
        return [_tenant_public(t) for t in store.list_tenants(session=session)]


def _new_key(tenant_id: str, name: str) -> tuple[ApiKey, str]:
    """A fresh key row and the raw key (shown once; only its hash is kept)."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=uuid.uuid4().hex,
        tenant_id=tenant_id,
        name=name,
        prefix=raw[:12],
        key_hash=hash_key(raw),
        created_at=utcnow(),
    )
    return key, raw


def _key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        tenant_id=key.tenant_id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def _created(key: ApiKey, raw: str) -> ApiKeyCreated:
    return ApiKeyCreated(**_key_public(key).model_dump(), key=raw)


def _require_tenant(session: Session, tenant_id: str) -> None:
    if store.get_tenant(tenant_id, session=session) is None:
        raise NotFoundError(f"tenant {tenant_id} not found", field="tenant_id")


def create_api_key(deps: ServiceDeps, tenant_id: str, name: str = "") -> ApiKeyCreated:
    """A new key for the tenant; the raw key is returned once and only its hash is kept."""
    key, raw = _new_key(tenant_id, name)
    with deps.sessions.begin() as session:
        _require_tenant(session, tenant_id)
        store.add_key(key, session=session)
    return _created(key, raw)


def list_api_keys(deps: ServiceDeps, tenant_id: str) -> list[ApiKeyPublic]:
    """Every key of the tenant, revoked ones included (``revoked_at``), oldest first."""
    with deps.sessions() as session:
        _require_tenant(session, tenant_id)
        keys = store.keys_of(tenant_id, session=session)
    return [_key_public(k) for k in keys]


def _live_key(session: Session, tenant_id: str, key_id: str) -> ApiKey:
    _require_tenant(session, tenant_id)
    key = store.get_key(tenant_id, key_id, session=session)
    if key is None:
        raise NotFoundError(f"key {key_id} of tenant {tenant_id} not found", field="key_id")
    return key


def revoke_api_key(
    deps: ServiceDeps, tenant_id: str, key_id: str, *, grace_seconds: float = 0.0
) -> ApiKeyPublic:
    """Revoke a key now, or after ``grace_seconds``; an earlier revocation stays as it is.

    Every replica refuses it within ``auth_cache_seconds`` of the revocation time (the cache
    of the replica that revokes it is cleared at once by ``MemoryService``).
    """
    at = utcnow() + timedelta(seconds=grace_seconds)
    with deps.sessions.begin() as session:
        key = _live_key(session, tenant_id, key_id)
        if key.revoked_at is None or key.revoked_at > at:
            store.revoke_key(key, at, session=session)
    return _key_public(key)


def rotate_api_key(
    deps: ServiceDeps,
    tenant_id: str,
    key_id: str,
    *,
    grace_seconds: float = 0.0,
    name: str | None = None,
) -> tuple[ApiKeyCreated, ApiKeyPublic]:
    """Issue a new key and revoke the old one (after ``grace_seconds``), in one transaction.

    Returns the new key (its raw value shown once) and the old one with its ``revoked_at``.
    """
    at = utcnow() + timedelta(seconds=grace_seconds)
    with deps.sessions.begin() as session:
        old = _live_key(session, tenant_id, key_id)
        if old.revoked_at is not None and old.revoked_at <= utcnow():
            raise ConflictError(f"key {key_id} is already revoked", field="key_id")
        new, raw = _new_key(tenant_id, old.name if name is None else name)
        store.add_key(new, session=session)
        if old.revoked_at is None or old.revoked_at > at:
            store.revoke_key(old, at, session=session)
    return _created(new, raw), _key_public(old)


class Authenticator:
    """Resolves raw API keys to principals, caching lookups for ``cache_seconds``."""

    def __init__(self, deps: ServiceDeps) -> None:
        self._deps = deps
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def forget(self, key_id: str) -> None:
        """Drop a key's cached lookups (it was revoked here: refuse it at once)."""
        with self._lock:
            self._cache = {d: hit for d, hit in self._cache.items() if hit[1].key_id != key_id}

    def revoke(self, tenant_id: str, key_id: str, grace_seconds: float = 0) -> ApiKeyPublic:
        """Revoke a key now or after ``grace_seconds``: refused by this process at once (its
        cache is dropped), by other processes within ``auth_cache_seconds``."""
        revoked = revoke_api_key(self._deps, tenant_id, key_id, grace_seconds=grace_seconds)
        self.forget(key_id)
        return revoked

    def rotate(
        self, tenant_id: str, key_id: str, grace_seconds: float = 0, name: str | None = None
    ) -> tuple[ApiKeyCreated, ApiKeyPublic]:
        """A new key, the old one revoked as by :meth:`revoke`."""
        rotated = rotate_api_key(
            self._deps, tenant_id, key_id, grace_seconds=grace_seconds, name=name
        )
        self.forget(key_id)
        return rotated

    def cached(self, raw_key: str | None) -> Principal | None:
        """The principal of a key seen recently (no I/O), else ``None``."""
        if not raw_key:
            return None
        admin_key = self._deps.settings.admin_key
        if admin_key and hmac.compare_digest(raw_key.encode(), admin_key.encode()):
            return Principal(tenant_id=None, key_id="admin", is_admin=True)
        with self._lock:
            hit = self._cache.get(hash_key(raw_key))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def authenticate(self, raw_key: str | None) -> Principal:
        if not raw_key:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
        admin_key = self._deps.settings.admin_key
        if admin_key and hmac.compare_digest(raw_key.encode(), admin_key.encode()):
            return Principal(tenant_id=None, key_id="admin", is_admin=True)
        digest = hash_key(raw_key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._deps.sessions() as session:
            key = store.key_by_hash(digest, session=session)
        wall = utcnow()
        if key is None or (key.revoked_at is not None and key.revoked_at <= wall):
            raise AuthError("unknown or revoked API key")
        principal = Principal(tenant_id=key.tenant_id, key_id=key.id)
        ttl = self._deps.settings.auth_cache_seconds
        if key.revoked_at is not None:  # revoked later (a rotation's grace): not cached past it
            ttl = min(ttl, (key.revoked_at - wall).total_seconds())
        with self._lock:
            self._cache[digest] = (now + ttl, principal)
        return principal


def ensure_local_key(deps: ServiceDeps, data_dir: Path) -> tuple[str, bool]:
    """The embedded default's key (tenant ``local``), created on first start.

    Returns ``(key, created)``. The key is kept in ``data_dir/api_key`` (mode 0600) so a
    restart reuses it.
    """
    path = data_dir / "api_key"
    if path.exists():
        raw = path.read_text().strip()
        with deps.sessions() as session:
            key = store.key_by_hash(hash_key(raw), session=session)
        if key is not None and (key.revoked_at is None or key.revoked_at > utcnow()):
            return raw, False
    with deps.sessions() as session:
        exists = store.get_tenant(LOCAL_TENANT_ID, session=session) is not None
    if not exists:
        with contextlib.suppress(ConflictError):  # another process created it first
            create_tenant(deps, "local", LOCAL_TENANT_ID)
    created = create_api_key(deps, LOCAL_TENANT_ID, name="local")
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(created.key + "\n")
    os.replace(tmp, path)
    return created.key, True
