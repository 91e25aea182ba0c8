"""SQLAlchemy 2 typed ORM: the system of record.

Everything else (faiss, BM25, the graph, Redis buffers) is derived from these tables and can be
rebuilt from them. Every row carries its tenant. Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKey",
    "Base",
    "Counter",
    "EventRow",
    "MemoryHistory",
    "MemoryRow",
    "SessionRow",
    "Tenant",
    "UTCDateTime",
    "utcnow",
]

# Stable constraint names so Alembic migrations are portable between SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Auto-increment needs INTEGER on SQLite and is BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


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
    )

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(32), default="fact")
    text: Mapped[str] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    embedding_model: Mapped[str] = mapped_column(String(200), default="")
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
    id: Mapped[str] = mapped_column(String(36), unique=True)
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
