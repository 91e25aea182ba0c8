"""Every public operation of memsvc, as data: the one table the doors are built from.

An :class:`Operation` names its HTTP method and path, its request models (path parameters,
query parameters, JSON body, or a streamed container file) and its response. The FastAPI routes
(``api/routes``), the REST clients and the embedded ``Memory``'s in-process transport
(``memsvc.sdk``) all dispatch through it, and the service's handlers
(``memsvc.service.handlers``) answer it, so REST and embedded behave the same by construction.
New doors (MCP tools, compatibility routes) are adapters over the same table.

This module is light on purpose (pydantic models only): the REST client imports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from memsvc.schemas import (
    ApiKeyCreated,
    ApiKeyPublic,
    CartridgeCompose,
    ConsolidateRequest,
    ContextRequest,
    ContextResponse,
    DeleteResult,
    EntityDetail,
    EntityPublic,
    EventBatch,
    EventPublic,
    EventsAdded,
    JobPublic,
    KVLookupRequest,
    KVLookupResult,
    KVPublic,
    ListEnvelope,
    MemoryAddBody,
    MemoryHistoryEntry,
    MemoryPublic,
    MemoryUpdate,
    MemoryWriteResult,
    Page,
    RelationPublic,
    SearchRequest,
    SearchResponse,
    SessionPublic,
    TenantCreate,
    TenantPublic,
)
from memsvc.schemas.cartridge_train import CartridgeTrainRequest
from memsvc.schemas.extraction import (
    ExtractionConfigPublic,
    ExtractionConfigUpdate,
    ExtractionScopeParams,
)
from memsvc.schemas.kv import KVLimits, KVLimitsPublic
from memsvc.schemas.params import (
    CartridgeListParams,
    CartridgeUploadParams,
    EntityListParams,
    EventListParams,
    KVListParams,
    MemoryListParams,
    MemoryScopeParams,
    RelationListParams,
    SessionKVUploadParams,
    SessionListParams,
)
from memsvc.schemas.purge import PurgeParams, PurgeResult
from memsvc.schemas.tenants import ApiKeyCreate, ApiKeyRevoke, ApiKeyRotate, ApiKeyRotated
from memsvc.schemas.transfer import ExportRequest, ImportResult
from memsvc.schemas.webhooks import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryListParams,
    WebhookDeliveryPublic,
    WebhookPublic,
)

__all__ = ["OPERATIONS", "Call", "Operation", "by_name"]

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
#: Who may call: a tenant's key (data), the admin key (tenants and keys), anyone (probes).
Auth = Literal["tenant", "admin", "public"]
#: What an ``Idempotency-Key`` does for a write (docs/security.md, "Idempotency"):
#: "transaction": the reply is stored in the write's own transaction (exactly once);
#: "claim": the key is held while the request runs and a 2xx reply stored before it is sent;
#: "never": ignored, the reply holds a secret that is never stored (a new API key).
Idempotency = Literal["transaction", "claim", "never"]

_PATH_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Operation:
    """One public operation: how it travels over HTTP and what it takes and gives."""

    tag: str  # the resource: memories, search, events, sessions, ...
    name: str  # unique within the tag; the OpenAPI operation id is ``{tag}-{name}``
    method: Method
    path: str  # under the API root, e.g. "/v1/memories/{memory_id}"
    summary: str
    response: Any = None  # the response model; None: no body (204)
    body: Any = None  # the JSON body's model
    query: Any = None  # the query parameters' model
    status_code: int = 200
    auth: Auth = "tenant"
    upload: bool = False  # the body is a container file, streamed (not JSON)
    download: bool = False  # the response is a container file, streamed
    media_type: str = "application/octet-stream"  # of a download
    idempotency: Idempotency = "claim"
    body_required: bool = True  # False: an absent body means the body model's defaults
    read_only: bool = False  # a POST that only reads (search, context, KV lookup)

    @property
    def id(self) -> str:
        return f"{self.tag}-{self.name}"

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PATH_PARAM.findall(self.path))

    @property
    def writes(self) -> bool:
        """Whether the operation changes state: the clients send each write with an
        idempotency key (POSTs that only read, like search, are not writes)."""
        return self.method != "GET" and not self.read_only

    def url(self, **path_params: str) -> str:
        """The path with each parameter filled in and quoted (the one place ids are quoted:
        ``/``, ``?``, ``#`` and ``%`` in an id stay inside their path segment)."""
        missing = set(self.path_params) - set(path_params)
        if missing:
            raise TypeError(f"{self.id}: missing path parameters {sorted(missing)}")
        return _PATH_PARAM.sub(lambda m: quote(str(path_params[m.group(1)]), safe=""), self.path)


@dataclass
class Call:
    """One call of an operation, its inputs already validated into the operation's models."""

    op: Operation
    path: dict[str, str] = field(default_factory=dict)
    query: Any = None  # an instance of ``op.query``
    body: Any = None  # an instance of ``op.body``
    # A container file sent as the body of an upload; the service consumes it (moves it into
    # the blob store or removes it), so it is always a copy the caller may lose.
    upload: Path | None = None
    upload_sha256: str | None = None  # its sha256 when known (hashed while received)
    # Client side: the key every attempt of a write carries (``Idempotency-Key``).
    idempotency_key: str | None = None
    # Server side: the key's request, for a write that stores its reply in its transaction
    # (``memsvc.service.idempotency.IdempotentRequest``).
    idempotency: Any = None


def _op(*args: Any, **kwargs: Any) -> Operation:
    return Operation(*args, **kwargs)


# -- long-term memories --------------------------------------------------------------------
MEMORIES = [
    _op("memories", "add", "POST", "/v1/memories", "Store one memory, or a batch as "
        '``{"items": [...]}`` (all or nothing); exact duplicates in a scope are a NOOP. With '
        "``Idempotency-Key``, the reply is stored with the memories: a retry gets it back.",
        response=ListEnvelope[MemoryWriteResult], body=MemoryAddBody, status_code=201,
        idempotency="transaction"),
    _op("memories", "list_memories", "GET", "/v1/memories", "A page of memories (newest first "
        "by default); follow ``next_cursor`` for more.",
        response=Page[MemoryPublic], query=MemoryListParams),
    _op("memories", "delete_by_scope", "DELETE", "/v1/memories", "Delete every memory of a "
        "scope (``user_id``, ``agent_id`` or ``session_id`` required).",
        response=DeleteResult, query=MemoryScopeParams),
    _op("memories", "get", "GET", "/v1/memories/{memory_id}", "One memory.",
        response=MemoryPublic),
    _op("memories", "update", "PATCH", "/v1/memories/{memory_id}", "Change the given fields "
        "only; a new ``text`` is re-embedded; ``metadata: null`` clears it.",
        response=MemoryPublic, body=MemoryUpdate),
    _op("memories", "delete", "DELETE", "/v1/memories/{memory_id}", "Delete one memory (a "
        "tombstone: its history keeps the old value).", response=DeleteResult),
    _op("memories", "history", "GET", "/v1/memories/{memory_id}/history", "Every mutation of "
        "the memory, oldest first.", response=ListEnvelope[MemoryHistoryEntry]),
    _op("memories", "restore", "POST", "/v1/memories/{memory_id}/restore", "Bring an archived "
        "(decayed) memory back into default search.", response=MemoryPublic),
]  # fmt: skip

# -- recall ---------------------------------------------------------------------------------
RECALL = [
    _op("search", "search", "POST", "/v1/search", "Dense + BM25 (+ graph), fused; filters "
        "narrow by scope, kind, metadata and time.", response=SearchResponse, body=SearchRequest,
        read_only=True),
    _op("context", "context", "POST", "/v1/context", "Working memory of the session plus the "
        "most relevant long-term memories, dated, under a token budget.",
        response=ContextResponse, body=ContextRequest, read_only=True),
]  # fmt: skip

# -- events and sessions --------------------------------------------------------------------
EVENTS = [
    _op("events", "add_events", "POST", "/v1/events", "Append chat events; they are durable "
        "when this answers. Returns them with their gate decisions. With ``Idempotency-Key``, "
        "the reply is stored with the events: a retry gets it back. With ``infer: true`` "
        "their facts are extracted now, in the same transaction, and returned (``facts``, "
        "with ADD/UPDATE/NOOP); a refusing LLM endpoint gives 502 and writes nothing.",
        response=EventsAdded, body=EventBatch, status_code=201,
        idempotency="transaction"),
    _op("events", "list_events", "GET", "/v1/events", "Events in write order, filtered by "
        "scope, role and event time.", response=Page[EventPublic], query=EventListParams),
    _op("sessions", "list_sessions", "GET", "/v1/sessions", "Sessions: state, counters, "
        "working-memory size.", response=Page[SessionPublic], query=SessionListParams),
    _op("sessions", "get_session", "GET", "/v1/sessions/{session_id}", "State (active / idle "
        "/ consolidated), counts and working-memory size.", response=SessionPublic),
    _op("sessions", "close_session", "POST", "/v1/sessions/{session_id}/close", "Consolidate "
        "the session's working memory into long-term memory now.", response=SessionPublic),
]  # fmt: skip

# -- consolidation and the graph ------------------------------------------------------------
JOBS = [
    _op("jobs", "consolidate", "POST", "/v1/consolidate", "Consolidate a session, a user's or "
        "agent's sessions, or the tenant; returns the job.",
        response=JobPublic, body=ConsolidateRequest, status_code=202),
    _op("jobs", "get_job", "GET", "/v1/jobs/{job_id}", "State, current step, counts and "
        "errors of a job.", response=JobPublic),
    _op("graph", "list_entities", "GET", "/v1/graph/entities", "Entities consolidation found.",
        response=Page[EntityPublic], query=EntityListParams),
    _op("graph", "get_entity", "GET", "/v1/graph/entities/{entity_id}", "The entity with its "
        "neighbours, relations and the memories that mention it.", response=EntityDetail),
    _op("graph", "list_relations", "GET", "/v1/graph/relations", "Typed relations with "
        "validity; ``as_of`` keeps those valid then.",
        response=Page[RelationPublic], query=RelationListParams),
]  # fmt: skip

# -- extraction configuration ---------------------------------------------------------------
EXTRACTION = [
    _op("extraction", "get_extraction_config", "GET", "/v1/extraction/config", "The "
        "extraction configuration in use for a scope (the most specific stored: user and "
        "agent, user, agent, tenant; ``version`` 0 when none).",
        response=ExtractionConfigPublic, query=ExtractionScopeParams),
    _op("extraction", "put_extraction_config", "PUT", "/v1/extraction/config", "Store a new "
        "version of a scope's instructions (for the LLM extractor's prompt) and categories "
        "(name, keywords, description; memories carry them in ``metadata.categories``).",
        response=ExtractionConfigPublic, body=ExtractionConfigUpdate),
    _op("extraction", "list_extraction_config_versions", "GET", "/v1/extraction/config/versions",
        "Every version of exactly this scope's configuration, newest first.",
        response=ListEnvelope[ExtractionConfigPublic], query=ExtractionScopeParams),
]  # fmt: skip

# -- KV memory ------------------------------------------------------------------------------
KV = [
    _op("cartridges", "train_cartridge", "POST", "/v1/cartridges/train", "Self-study + "
        "distillation on ``corpus`` as a job; progress in ``GET /v1/jobs/{id}``, the stored "
        "cartridge's id in the finished job's ``scope.kv_id``.",
        response=JobPublic, body=CartridgeTrainRequest, status_code=202),
    _op("cartridges", "push_cartridge", "POST", "/v1/cartridges", "Upload a container (the "
        "body: a ``memsvc.kv`` safetensors file, streamed).",
        response=KVPublic, query=CartridgeUploadParams, status_code=201, upload=True),
    _op("cartridges", "list_cartridges", "GET", "/v1/cartridges", "Cartridges, by model "
        "fingerprint id and name.", response=Page[KVPublic], query=CartridgeListParams),
    _op("cartridges", "compose_cartridges", "POST", "/v1/cartridges/compose", "Concatenate "
        "cartridges along tokens (same model fingerprint) into a new one.",
        response=KVPublic, body=CartridgeCompose, status_code=201),
    _op("cartridges", "get_cartridge", "GET", "/v1/cartridges/{cartridge_id}", "One "
        "cartridge.", response=KVPublic),
    _op("cartridges", "get_cartridge_content", "GET", "/v1/cartridges/{cartridge_id}/content",
        "The container file, streamed (``application/octet-stream``).", download=True),
    _op("cartridges", "delete_cartridge", "DELETE", "/v1/cartridges/{cartridge_id}", "Delete "
        "a cartridge.", status_code=204),
    _op("kv", "put_session_kv", "PUT", "/v1/sessions/{session_id}/kv", "Store (replace) the KV "
        "cache of a session, or of one of its episodes; the container carries the token chain.",
        response=KVPublic, query=SessionKVUploadParams, upload=True),
    _op("kv", "lookup_kv", "POST", "/v1/kv/lookup", "The stored cache covering the longest "
        "prefix of ``token_ids`` for this model.", response=KVLookupResult, body=KVLookupRequest,
        read_only=True),
    _op("kv", "list_kv", "GET", "/v1/kv", "Stored KV containers (episodic and cartridges).",
        response=Page[KVPublic], query=KVListParams),
    _op("kv", "get_kv", "GET", "/v1/kv/{kv_id}", "One stored KV container.", response=KVPublic),
    _op("kv", "get_kv_content", "GET", "/v1/kv/{kv_id}/content", "The container file, "
        "streamed (``application/octet-stream``).", download=True),
    _op("kv", "delete_kv", "DELETE", "/v1/kv/{kv_id}", "Delete a stored KV container.",
        status_code=204),
]  # fmt: skip

# -- erasure -------------------------------------------------------------------------------
_PURGE = (
    "Erase every trace of the {0} (``purge=true`` is required): memories and their "
    "history, events, sessions, working memory, the graph only it supports, KV caches, "
    "index entries; an audit row keeps counts and ids, never content."
)
PURGE = [
    _op("users", "purge_user", "DELETE", "/v1/users/{user_id}", _PURGE.format("user"),
        response=PurgeResult, query=PurgeParams),
    _op("agents", "purge_agent", "DELETE", "/v1/agents/{agent_id}", _PURGE.format("agent"),
        response=PurgeResult, query=PurgeParams),
    _op("sessions", "purge_session", "DELETE", "/v1/sessions/{session_id}",
        _PURGE.format("session"), response=PurgeResult, query=PurgeParams),
]  # fmt: skip

# -- export --------------------------------------------------------------------------------
EXPORTS = [
    _op("exports", "create_export", "POST", "/v1/exports", "Export the tenant (or one user) "
        "to an archive (docs/export-format.md) as a job; poll ``GET /v1/exports/{id}``, then "
        "download ``/content``.", response=JobPublic, body=ExportRequest, status_code=202,
        body_required=False),
    _op("exports", "get_export", "GET", "/v1/exports/{export_id}", "The export job: state, "
        "counts, the archive's size when done.", response=JobPublic),
    _op("exports", "get_export_content", "GET", "/v1/exports/{export_id}/content", "The "
        "finished archive, streamed (``application/zip``); 409 while it is being written.",
        download=True, media_type="application/zip"),
    _op("exports", "import_archive", "POST", "/v1/imports", "Import an archive (the body: "
        "the zip, streamed) into this tenant: checksums verified first, ids kept, identical "
        "rows skipped, conflicts reported and never merged. Large archives: ``memsvc import``.",
        response=ImportResult, upload=True),
]  # fmt: skip

# -- tenants and keys (the admin key) -------------------------------------------------------
ADMIN = [
    _op("admin", "create_tenant", "POST", "/v1/admin/tenants", "A new tenant.",
        response=TenantPublic, body=TenantCreate, status_code=201, auth="admin"),
    _op("admin", "list_tenants", "GET", "/v1/admin/tenants", "Every tenant.",
        response=ListEnvelope[TenantPublic], auth="admin"),
    _op("admin", "create_key", "POST", "/v1/admin/tenants/{tenant_id}/keys", "A new key for "
        "the tenant; the ``key`` field is shown only in this response.",
        response=ApiKeyCreated, body=ApiKeyCreate, status_code=201, auth="admin",
        idempotency="never"),
    _op("admin", "list_keys", "GET", "/v1/admin/tenants/{tenant_id}/keys", "Every key of the "
        "tenant with its ``revoked_at`` (revoked keys stay listed; prefixes only).",
        response=ListEnvelope[ApiKeyPublic], auth="admin"),
    _op("admin", "revoke_key", "POST", "/v1/admin/tenants/{tenant_id}/keys/{key_id}/revoke",
        "Revoke a key: refused by this replica at once, by every replica within "
        "``MEMSVC_AUTH_CACHE_SECONDS`` (of ``revoked_at``, with a grace period).",
        response=ApiKeyPublic, body=ApiKeyRevoke, body_required=False, auth="admin"),
    _op("admin", "rotate_key", "POST", "/v1/admin/tenants/{tenant_id}/keys/{key_id}/rotate",
        "Issue a new key and revoke this one, at once or after ``grace_seconds``.",
        response=ApiKeyRotated, body=ApiKeyRotate, body_required=False, status_code=201,
        auth="admin", idempotency="never"),
    _op("admin", "get_kv_limits", "GET", "/v1/admin/tenants/{tenant_id}/kv-limits", "The "
        "tenant's KV quota and episodic retention overrides, what applies, and its use.",
        response=KVLimitsPublic, auth="admin"),
    _op("admin", "set_kv_limits", "PUT", "/v1/admin/tenants/{tenant_id}/kv-limits", "Set "
        "(replace) the tenant's KV overrides; null goes back to the settings' default.",
        response=KVLimitsPublic, body=KVLimits, auth="admin"),
]  # fmt: skip

# -- webhooks -------------------------------------------------------------------------------
WEBHOOKS = [
    _op("webhooks", "create_webhook", "POST", "/v1/webhooks", "Subscribe a URL to change "
        "events (memory.added/updated/deleted/invalidated, job.finished, session.consolidated); "
        "the signing ``secret`` is shown only in this response.",
        response=WebhookCreated, body=WebhookCreate, status_code=201, idempotency="never"),
    _op("webhooks", "list_webhooks", "GET", "/v1/webhooks", "The tenant's subscriptions "
        "(without their secrets).", response=ListEnvelope[WebhookPublic]),
    _op("webhooks", "delete_webhook", "DELETE", "/v1/webhooks/{webhook_id}", "Delete a "
        "subscription; its pending deliveries are dropped.", status_code=204),
    _op("webhooks", "list_deliveries", "GET", "/v1/webhooks/{webhook_id}/deliveries",
        "The subscription's deliveries, newest first, each with every attempt (time, outcome, "
        "HTTP status or error).", response=ListEnvelope[WebhookDeliveryPublic],
        query=WebhookDeliveryListParams),
]  # fmt: skip

OPERATIONS: tuple[Operation, ...] = (
    *MEMORIES,
    *RECALL,
    *EVENTS,
    *JOBS,
    *EXTRACTION,
    *KV,
    *PURGE,
    *EXPORTS,
    *ADMIN,
    *WEBHOOKS,
)

_BY_NAME = {op.id: op for op in OPERATIONS}


def by_name(op_id: str) -> Operation:
    """The operation ``{tag}-{name}``."""
    return _BY_NAME[op_id]
