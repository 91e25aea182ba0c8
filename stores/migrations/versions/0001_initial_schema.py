"""initial schema: tenants, api keys, memories, history

Revision ID: 0001
Revises:
Create Date: 2026-11-24 09:17:14.269710
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import stores.models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    op.bulk_insert(
        sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
        [{"name": "memory_rev", "value": 0}],
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "memories",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("agent_id", sa.String(length=200), nullable=True),
        sa.Column("session_id", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(length=200), nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("occurred_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_from", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_to", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source_event_ids", sa.JSON(), nullable=False),
        sa.Column("rev", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_memories_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_memories")),
        sa.UniqueConstraint("id", name=op.f("uq_memories_id")),
    )
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memories_rev"), ["rev"], unique=False)
        batch_op.create_index(
            "ix_memories_tenant_hash", ["tenant_id", "content_hash"], unique=False
        )
        batch_op.create_index("ix_memories_tenant_pk", ["tenant_id", "pk"], unique=False)
        batch_op.create_index(
            "ix_memories_tenant_user_pk", ["tenant_id", "user_id", "pk"], unique=False
        )
        batch_op.create_index(
            "ix_memories_tenant_agent_pk", ["tenant_id", "agent_id", "pk"], unique=False
        )
        batch_op.create_index(
            "ix_memories_tenant_session_pk", ["tenant_id", "session_id", "pk"], unique=False
        )

    op.create_table(
        "memory_history",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("memory_id", sa.String(length=36), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("old_value", sa.JSON(), nullable=True),
        sa.Column("new_value", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_memory_history_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_memory_history")),
    )
    with op.batch_alter_table("memory_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_memory_history_memory_id"), ["memory_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("memory_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memory_history_memory_id"))

    op.drop_table("memory_history")
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.drop_index("ix_memories_tenant_session_pk")
        batch_op.drop_index("ix_memories_tenant_agent_pk")
        batch_op.drop_index("ix_memories_tenant_user_pk")
        batch_op.drop_index("ix_memories_tenant_pk")
        batch_op.drop_index("ix_memories_tenant_hash")
        batch_op.drop_index(batch_op.f("ix_memories_rev"))

    op.drop_table("memories")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant_id"))

    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("counters")
