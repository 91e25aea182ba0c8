"""SQLAlchemy 2 typed ORM: the system of record.

Everything else (faiss, BM25, the graph, Redis buffers) is derived from these tables and can be
rebuilt from them. Every row carries its tenant. Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from memsvc.vocabulary import JobState
from stores.model_base import Base, BigId, JsonDoc, UTCDateTime, utcnow

# Tables kept in their own modules (this one stays under 500 lines), re-exported here.
from stores.webhook_models import WebhookAttemptRow, WebhookDeliveryRow, WebhookRow

__all__ = [
    "ApiKey",
    "Base",
    "Counter",
    "EntityRow",
    "EventRow",
    "ExtractionConfigRow",
    "IdempotencyRow",
    "JobRow",
    "KVBlobRow",
    "KVCacheRow",
    "KVLimitRow",
    "KVPrefixRow",
    "MemoryEntity",
    "MemoryHistory",
    "MemoryRow",
    "PurgeAuditRow",
    "RelationRow",
    "SessionRow",
    "Tenant",
    "UTCDateTime",
    "WebhookAttemptRow",
    "WebhookDeliveryRow",
    "WebhookRow",
    "utcnow",
]


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """An API key; only its sha256 is stored, the prefix is kept to recognise it in listings."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Counter(Base):
    """Named monotonic counters. ``memory_rev`` orders every memory change (see stores.memories)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class MemoryRow(Base):
    """One long-term memory.

    Deletion is a tombstone (``deleted_at``) so derived indexes can follow it.
    """

    __tablename__ = "memories"
    # Listings page by pk inside a tenant, optionally inside one scope: keep each of those an
    # index range scan, never a sort of the whole tenant.
    __table_args__ = (
        Index("ix_memories_tenant_pk", "tenant_id", "pk"),
        Index("ix_memories_tenant_user_pk", "tenant_id", "user_id", "pk"),
        Index("ix_memories_tenant_agent_pk", "tenant_id", "agent_id", "pk"),
        Index("ix_memories_tenant_session_pk", "tenant_id", "session_id", "pk"),
        Index("ix_memories_tenant_hash", "tenant_id", "content_hash"),
        Index("ix_memories_tenant_slot", "tenant_id", "slot"),
        Index("ix_memories_tenant_episode", "tenant_id", "episode_id"),
    )

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, insert_sentinel=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(32), default="fact")
    text: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    embedding_model: Mapped[str] = mapped_column(String(200), default="")
    # The vectors of the text's sentences (float32, concatenated, same model) when it has
    # several: search scores a long multi-topic message by its best sentence too.
    sentence_vectors: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    importance: Mapped[float] = mapped_column(Float, default=0.5)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When what the memory states happened (the source event's time); defaults to created_at.
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    # Provenance: ids of the source events this memory states.
    source_event_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Change counter value of the last write; derived indexes sync on ``rev > watermark``.
    rev: Mapped[int] = mapped_column(BigInteger, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Forgetting curve: strength as of the last decay pass, reinforced by retrieval and
    # repetition (access_count, last_accessed_at). Archived memories leave default search
    # but stay listable and restorable; nothing is deleted by decay.
    strength: Mapped[float] = mapped_column(Float, default=1.0, server_default="1.0")
    access_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_accessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Consolidation: "subject|attribute" of a single-valued fact (a newer value closes the
    # older one's validity), and the episode a fact was extracted in.
    slot: Mapped[str | None] = mapped_column(String(300), nullable=True)
    episode_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class MemoryHistory(Base):
    """One row per mutation of a memory: what it was, what it became, who did it."""

    __tablename__ = "memory_history"

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    memory_id: Mapped[str] = mapped_column(String(36), index=True)
    op: Mapped[str] = mapped_column(String(16))
    old_value: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    new_value: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventRow(Base):
    """One chat event, append-only: committed before it is acknowledged.

    ``decision`` records what the sensory gate did with it (``kept``, ``dropped:filler``...), and
    ``embeddings`` holds one float32 vector per kept piece, so every derived tier can be rebuilt
    from this table without embedding anything twice.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_tenant_session_time", "tenant_id", "session_id", "event_time", "pk"),
        Index("ix_events_tenant_user_pk", "tenant_id", "user_id", "pk"),
        Index("ix_events_tenant_pk", "tenant_id", "pk"),
        Index("ix_events_unpromoted", "tenant_id", "session_id", "promoted_at"),
    )

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, insert_sentinel=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    session_id: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    speaker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content: Mapped[str] = mapped_column(Text)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    decision: Mapped[str] = mapped_column(String(32))
    pieces: Mapped[list[str]] = mapped_column(JSON, default=list)
    embeddings: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The only field ever updated: when the event's pieces reached long-term memory. The
    # content stays as written; this is the per-event consolidation watermark.
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When facts were extracted from it on write (``infer=True``), in the write's own
    # transaction: consolidation then leaves its facts alone (episodes and graph still use it).
    facts_extracted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SessionRow(Base):
    """A conversation: its scope, counters and how far it has been consolidated."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_tenant_user", "tenant_id", "user_id"),)

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Wall-clock time of the last write (idleness is measured on it, not on event times).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Latest event time seen (events may describe the past).
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    kept_count: Mapped[int] = mapped_column(Integer, default=0)
    promoted_count: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    consolidated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Consolidation watermark: every event with pk <= extracted_upto has been through
    # extraction (advanced in the same transaction as the facts it produced).
    extracted_upto: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    extracted_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class JobRow(Base):
    """A background job (consolidation): its state is this row, not a Celery result."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_jobs_state_updated", "state", "updated_at"),
        CheckConstraint(JobState.sql_check(), name="ck_jobs_state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32), default="consolidate")
    # What started it: request, idle, overflow, close, schedule.
    trigger: Mapped[str] = mapped_column(String(32))
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED)
    step: Mapped[str | None] = mapped_column(String(32), nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EntityRow(Base):
    """A node of a user's entity graph: a person, place, organisation, thing or activity.

    ``user_id`` is "" for memories without a user (a unique key cannot hold NULLs).
    """

    __tablename__ = "entities"
    __table_args__ = (Index("uq_entities_scope_key", "tenant_id", "user_id", "key", unique=True),)

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(200), default="")
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    mentions: Mapped[int] = mapped_column(Integer, default=0)
    # Other names merged into this one, each with its evidence:
    # {"name": "Mel", "rule": "short form of a known person", "memory_id": "..."}.
    aliases: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RelationRow(Base):
    """A typed edge between two entities, valid over ``[valid_from, valid_to)``."""

    __tablename__ = "relations"
    __table_args__ = (
        Index("ix_relations_scope_source", "tenant_id", "user_id", "source_pk"),
        Index("ix_relations_target", "target_pk"),
        Index("ix_relations_memory", "memory_pk"),
    )

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(200), default="")
    source_pk: Mapped[int] = mapped_column(ForeignKey("entities.pk", ondelete="CASCADE"))
    target_pk: Mapped[int] = mapped_column(ForeignKey("entities.pk", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    # The fact that states it; closing that fact's validity closes the relation's.
    memory_pk: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MemoryEntity(Base):
    """Which entities a memory mentions (its graph neighbours)."""

    __tablename__ = "memory_entities"
    __table_args__ = (Index("ix_memory_entities_entity", "entity_pk"),)

    memory_pk: Mapped[int] = mapped_column(
        ForeignKey("memories.pk", ondelete="CASCADE"), primary_key=True
    )
    entity_pk: Mapped[int] = mapped_column(
        ForeignKey("entities.pk", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16), default="mention")


class KVCacheRow(Base):
    """A stored KV container (a trained cartridge or an episodic cache): its manifest's facts
    for filtering, and the content address of the file in the blob store."""

    __tablename__ = "kv_caches"
    __table_args__ = (
        Index("ix_kv_caches_tenant_kind_model", "tenant_id", "kind", "model_id"),
        Index("ix_kv_caches_tenant_session", "tenant_id", "session_id", "episode_id"),
        Index("ix_kv_caches_blob", "blob_sha256"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "cartridge" or "episodic"
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_id: Mapped[str] = mapped_column(String(32))  # ModelFingerprint.id
    model: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    codec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dtype: Mapped[str] = mapped_column(String(16))
    n_tokens: Mapped[int] = mapped_column(Integer)
    start_position: Mapped[int] = mapped_column(Integer, default=0)
    bits_per_elem: Mapped[float] = mapped_column(Float)
    origin: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    session_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    episode_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    corpus_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    blob_sha256: Mapped[str] = mapped_column(String(64))  # sha256 of the whole file
    payload_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    use_count: Mapped[int] = mapped_column(Integer, default=0)


class KVPrefixRow(Base):
    """One recorded prefix of a stored cache: the token-hash chain value after ``n_tokens``."""

    __tablename__ = "kv_prefixes"
    __table_args__ = (Index("ix_kv_prefixes_lookup", "tenant_id", "model_id", "prefix_hash"),)

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kv_id: Mapped[str] = mapped_column(ForeignKey("kv_caches.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(32))
    prefix_hash: Mapped[str] = mapped_column(String(64))
    n_tokens: Mapped[int] = mapped_column(Integer)


class KVLimitRow(Base):
    """Per-tenant overrides of the KV storage quota and episodic retention budget (bytes)."""

    __tablename__ = "kv_limits"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    retention_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class KVBlobRow(Base):
    """A blob of the content-addressed store, registered while rows may point at it.

    The row is also the lock that orders a blob's arrival and its removal: whoever puts a file
    in or takes one out holds this row (inserted or updated in the same transaction) until it
    commits, so a collection never removes a blob that an upload has just relied on.
    """

    __tablename__ = "kv_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyRow(Base):
    """An ``Idempotency-Key`` and the first reply sent for it, replayed to a retry.

    ``scope`` is the tenant id ("" for the admin key). A row is ``pending`` while a request
    holds the key (``token``, until ``locked_until``) or ``done`` with the reply; for events
    and memories it is written ``done`` in the write's own transaction.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    # sha256 of the request (method, path, query, body); NULL while a claimed one is read.
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(200), nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PurgeAuditRow(Base):
    """What one purge erased: counts and ids, never content (client-chosen ids as sha256)."""

    __tablename__ = "purge_audit"  # one row per purge: small, read by hand

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    scope_kind: Mapped[str] = mapped_column(String(16))
    scope_sha256: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200), default="")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ids: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExtractionConfigRow(Base):
    """One version of a project's extraction configuration: instructions for the LLM
    extractor's prompt and categories (name, keywords, description).

    Per tenant, optionally narrowed to a user and/or an agent (``""``: any; a key column, so
    never NULL). Append-only: each change is a new ``version`` of its scope, and the newest
    version of the most specific scope is the one in use.
    """

    __tablename__ = "extraction_configs"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "user_id", "agent_id", "version", name="uq_extraction_configs_version"
        ),
    )

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(200), default="")
    agent_id: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[int] = mapped_column(Integer)
    instructions: Mapped[str] = mapped_column(Text, default="")
    categories: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
