"""Pydantic models: the contract shared by the REST API, the SDK and the embedded Memory."""

from memsvc.schemas.common import DeleteResult, ListEnvelope, Page, ScopeId, UtcDatetime
from memsvc.schemas.events import (
    ContextItem,
    ContextMessage,
    ContextRequest,
    ContextResponse,
    EventBatch,
    EventCreate,
    EventPublic,
    EventRole,
    SessionPublic,
    SessionState,
)
from memsvc.schemas.memories import (
    MemoryAddBody,
    MemoryBatch,
    MemoryCreate,
    MemoryFilter,
    MemoryHistoryEntry,
    MemoryKind,
    MemoryPublic,
    MemoryUpdate,
    MemoryWriteResult,
    Scope,
)
from memsvc.schemas.search import SearchRequest, SearchResponse, SearchResult
from memsvc.schemas.tenants import ApiKeyCreated, ApiKeyPublic, TenantCreate, TenantPublic

__all__ = [
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ContextItem",
    "ContextMessage",
    "ContextRequest",
    "ContextResponse",
    "DeleteResult",
    "EventBatch",
    "EventCreate",
    "EventPublic",
    "EventRole",
    "ListEnvelope",
    "MemoryAddBody",
    "MemoryBatch",
    "MemoryCreate",
    "MemoryFilter",
    "MemoryHistoryEntry",
    "MemoryKind",
    "MemoryPublic",
    "MemoryUpdate",
    "MemoryWriteResult",
    "Page",
    "Scope",
    "ScopeId",
    "SearchRequest",
    "SearchResponse",
    "SearchResult",
    "SessionPublic",
    "SessionState",
    "TenantCreate",
    "TenantPublic",
    "UtcDatetime",
]
