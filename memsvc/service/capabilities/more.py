"""Jobs (consolidation, cartridge training), the entity graph, the extraction configuration,
KV memory, tenants and keys.

KV calls import torch on first use, so commands that never touch KV start without it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memsvc.schemas import (
    ApiKeyCreated,
    ApiKeyPublic,
    ConsolidateRequest,
    EntityDetail,
    EntityPublic,
    JobPublic,
    Page,
    RelationPublic,
    TenantPublic,
)
from memsvc.schemas.cartridge_train import CartridgeTrainRequest
from memsvc.schemas.extraction import (
    ExtractionConfigPublic,
    ExtractionConfigUpdate,
    ExtractionScopeParams,
)
from memsvc.service import extraction_config, graph, jobs, tenants, webhooks
from memsvc.service.deps import ServiceDeps
from memsvc.service.jobs import JobDispatcher
from memsvc.service.runtime import BackgroundRuntime
from memsvc.service.tenants import Principal

if TYPE_CHECKING:
    from kv_cartridges.format import KVContainer
    from kv_cartridges.quant import LayerwiseSpec, QuantSpec
    from memsvc.schemas import CartridgeCompose, KVKind, KVLookupRequest, KVLookupResult, KVPublic
    from memsvc.schemas.kv import KVLimitsPublic
    from memsvc.schemas.webhooks import (
        WebhookCreate,
        WebhookCreated,
        WebhookDeliveryListParams,
        WebhookDeliveryPublic,
        WebhookPublic,
    )
    from memsvc.service.kv import KVContent

__all__ = ["KV", "Extraction", "Graph", "Jobs", "Tenants", "Webhooks"]


class Jobs:
    """Background jobs: consolidation on request, cartridge training, their state."""

    def __init__(
        self, deps: ServiceDeps, runtime: BackgroundRuntime, dispatcher: JobDispatcher
    ) -> None:
        self.deps, self.runtime, self.dispatcher = deps, runtime, dispatcher

    def consolidate(self, tenant_id: str, request: ConsolidateRequest) -> JobPublic:
        """Start consolidating a scope in the background; returns the job (see get)."""
        return jobs.request_consolidation(self.deps, self.dispatcher, tenant_id, request)

    def get(self, tenant_id: str, job_id: str) -> JobPublic:
        return jobs.get_job(self.deps, tenant_id, job_id)

    def list(self, tenant_id: str, *, limit: int = 50) -> list[JobPublic]:
        """The newest jobs of the tenant, newest first."""
        return jobs.list_jobs(self.deps, tenant_id, limit=limit)

    def train_cartridge(self, tenant_id: str, request: CartridgeTrainRequest) -> JobPublic:
        """Train a KV cartridge on a corpus in the background; the job stores it (see get)."""
        from memsvc.service import cartridge_train  # torch and transformers load on first use

        return cartridge_train.request_training(self.deps, self.runtime, tenant_id, request)


class Graph:
    """The entity graph consolidation builds: entities, relations with validity."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps

    def list_entities(
        self,
        tenant_id: str,
        *,
        user_id: str | None = None,
        type_: str | None = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[EntityPublic]:
        return graph.list_entities(
            self.deps, tenant_id, user_id=user_id, type_=type_, name=name, limit=limit,
            cursor=cursor,
        )  # fmt: skip

    def get_entity(self, tenant_id: str, entity_id: str) -> EntityDetail:
        return graph.get_entity(self.deps, tenant_id, entity_id)

    def list_relations(
        self,
        tenant_id: str,
        *,
        user_id: str | None = None,
        entity_id: str | None = None,
        type_: str | None = None,
        as_of: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[RelationPublic]:
        return graph.list_relations(
            self.deps, tenant_id, user_id=user_id, entity_id=entity_id, type_=type_,
            as_of=as_of, limit=limit, cursor=cursor,
        )  # fmt: skip


class Extraction:
    """A project's extraction configuration: instructions and categories, versioned."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps

    def get_config(self, tenant_id: str, scope: ExtractionScopeParams) -> ExtractionConfigPublic:
        return extraction_config.current_config(self.deps, tenant_id, scope)

    def put_config(
        self, tenant_id: str, update: ExtractionConfigUpdate, *, actor: str
    ) -> ExtractionConfigPublic:
        return extraction_config.put_config(self.deps, tenant_id, update, actor=actor)

    def list_versions(
        self, tenant_id: str, scope: ExtractionScopeParams
    ) -> list[ExtractionConfigPublic]:
        return extraction_config.config_versions(self.deps, tenant_id, scope)


class KV:
    """KV memory: cartridges and episodic caches (see ``memsvc.service.kv``)."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps

    def store_file(
        self,
        tenant_id: str,
        path: Path,
        *,
        kind: KVKind,
        name: str | None = None,
        session_id: str | None = None,
        episode_id: str | None = None,
        spec: QuantSpec | LayerwiseSpec | None = None,
        metadata: dict[str, Any] | None = None,
        digest: str | None = None,
    ) -> KVPublic:
        """Verify and store an uploaded container file (consumed: moved in or removed)."""
        from memsvc.service import kv

        return kv.store_file(
            self.deps, tenant_id, path, kind=kind, name=name, session_id=session_id,
            episode_id=episode_id, spec=spec, metadata=metadata, digest=digest,
        )  # fmt: skip

    def save_cartridge(
        self,
        tenant_id: str,
        container: KVContainer,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> KVPublic:
        """Store a KV cartridge built in-process (e.g. by training)."""
        from memsvc.service import kv

        return kv.save_cartridge(self.deps, tenant_id, container, name=name, metadata=metadata)

    def save_session(
        self,
        tenant_id: str,
        session_id: str,
        container: KVContainer,
        *,
        episode_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> KVPublic:
        """Store (replace) a session's or episode's KV cache."""
        from memsvc.service import kv

        return kv.save_session_kv(
            self.deps, tenant_id, session_id, container, episode_id=episode_id, metadata=metadata
        )

    def get(self, tenant_id: str, kv_id: str, *, kind: KVKind | None = None) -> KVPublic:
        from memsvc.service import kv

        return kv.get_kv(self.deps, tenant_id, kv_id, kind=kind)

    def list(
        self,
        tenant_id: str,
        *,
        kind: KVKind | None = None,
        model_id: str | None = None,
        name: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[KVPublic]:
        from memsvc.service import kv

        return kv.list_kv(
            self.deps, tenant_id, kind=kind, model_id=model_id, name=name,
            session_id=session_id, limit=limit, cursor=cursor,
        )  # fmt: skip

    def delete(self, tenant_id: str, kv_id: str, *, kind: KVKind | None = None) -> None:
        from memsvc.service import kv

        kv.delete_kv(self.deps, tenant_id, kv_id, kind=kind)

    def open_content(self, tenant_id: str, kv_id: str, *, kind: KVKind | None = None) -> KVContent:
        """The stored container file, to stream (counts as a use)."""
        from memsvc.service import kv

        return kv.open_content(self.deps, tenant_id, kv_id, kind=kind)

    def load(self, tenant_id: str, kv_id: str, *, kind: KVKind | None = None) -> KVContainer:
        """The stored container, verified (counts as a use)."""
        from memsvc.service import kv

        return kv.load_container(self.deps, tenant_id, kv_id, kind=kind)

    def lookup(self, tenant_id: str, request: KVLookupRequest) -> KVLookupResult:
        """The stored cache covering the longest prefix of the given tokens."""
        from memsvc.service import kv_lookup

        return kv_lookup.lookup(self.deps, tenant_id, request)

    def compose(self, tenant_id: str, request: CartridgeCompose) -> KVPublic:
        """Cartridges of one model concatenated along tokens into a new one."""
        from memsvc.service import kv_lifecycle

        return kv_lifecycle.compose_cartridges(self.deps, tenant_id, request)

    def consolidate(
        self, *, tenant_id: str | None = None, now: datetime | None = None
    ) -> dict[str, int]:
        """Re-encode old episodic caches at fewer bits; drop the least used past the budget."""
        from memsvc.service import kv_lifecycle

        return kv_lifecycle.consolidate_kv(self.deps, tenant_id=tenant_id, now=now)

    def set_limits(
        self,
        tenant_id: str,
        *,
        quota_bytes: int | None = None,
        retention_bytes: int | None = None,
    ) -> KVLimitsPublic:
        """Per-tenant overrides of ``MEMSVC_KV__QUOTA_BYTES`` / ``RETENTION_BYTES`` (None:
        the setting)."""
        from memsvc.service import kv

        return kv.set_limits(
            self.deps, tenant_id, quota_bytes=quota_bytes, retention_bytes=retention_bytes
        )

    def get_limits(self, tenant_id: str) -> KVLimitsPublic:
        """A tenant's overrides, what applies, and what it stores now."""
        from memsvc.service import kv

        return kv.get_limits(self.deps, tenant_id)


class Tenants:
    """Tenants, their API keys, and who a key is."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps
        self._auth = tenants.Authenticator(deps)

    def authenticate(self, raw_key: str | None) -> Principal:
        """The principal of an API key; raises ``AuthError`` for a missing or unknown key."""
        return self._auth.authenticate(raw_key)

    def cached_principal(self, raw_key: str | None) -> Principal | None:
        """The principal of a recently authenticated key, without touching the database."""
        return self._auth.cached(raw_key)

    def create(self, name: str, tenant_id: str | None = None) -> TenantPublic:
        return tenants.create_tenant(self.deps, name, tenant_id)

    def list(self) -> list[TenantPublic]:
        return tenants.list_tenants(self.deps)

    def create_key(self, tenant_id: str, name: str = "") -> ApiKeyCreated:
        return tenants.create_api_key(self.deps, tenant_id, name)

    def list_keys(self, tenant_id: str) -> list[ApiKeyPublic]:
        return tenants.list_api_keys(self.deps, tenant_id)

    def revoke_key(self, tenant_id: str, key_id: str, grace_seconds: float = 0) -> ApiKeyPublic:
        """Revoke a key now or after ``grace_seconds`` (see ``Authenticator.revoke``)."""
        return self._auth.revoke(tenant_id, key_id, grace_seconds)

    def rotate_key(
        self, tenant_id: str, key_id: str, grace_seconds: float = 0, name: str | None = None
    ) -> tuple[ApiKeyCreated, ApiKeyPublic]:
        """A new key; the old one is revoked after ``grace_seconds``."""
        return self._auth.rotate(tenant_id, key_id, grace_seconds, name)

    def ensure_local_key(self) -> tuple[str, bool]:
        """The embedded default's tenant and key (created on first use)."""
        return tenants.ensure_local_key(self.deps, self.deps.settings.data_dir)


class Webhooks:
    """Subscriptions to change events, and the record of their deliveries.

    Embedded (no ``MEMSVC_REDIS_URL``) the deliveries are sent by a thread of the background
    runtime, started with the server's background work, or by the first subscription of a
    service that runs none (the embedded ``Memory``); in the stack the Celery beat sends them.
    """

    def __init__(self, deps: ServiceDeps, runtime: BackgroundRuntime) -> None:
        self.deps, self.runtime = deps, runtime

    def start_sender(self, *, if_subscribed: bool = False) -> None:
        """Start the embedded sender thread (once); a no-op in the stack. ``if_subscribed``:
        only when the database holds a subscription (a service opened on existing data)."""
        if self.deps.settings.redis_url:
            return
        if if_subscribed and not webhooks.any_subscription(self.deps):
            return
        interval = self.deps.settings.webhooks.poll_seconds
        self.runtime.every("memsvc-webhooks", self.deliver_due, interval)

    def create(self, tenant_id: str, body: WebhookCreate) -> WebhookCreated:
        created = webhooks.create_webhook(self.deps, tenant_id, body)
        self.start_sender()
        return created

    def list(self, tenant_id: str) -> list[WebhookPublic]:
        return webhooks.list_webhooks(self.deps, tenant_id)

    def delete(self, tenant_id: str, webhook_id: str) -> None:
        webhooks.delete_webhook(self.deps, tenant_id, webhook_id)

    def deliveries(
        self, tenant_id: str, webhook_id: str, params: WebhookDeliveryListParams
    ) -> list[WebhookDeliveryPublic]:
        return webhooks.list_deliveries(self.deps, tenant_id, webhook_id, params)

    def deliver_due(self) -> int:
        """Send the deliveries due now, in this thread (the background loops call it)."""
        return webhooks.deliver_due(self.deps)
