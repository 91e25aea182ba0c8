"""consolidation: jobs, graph, decay

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:17:25.391037
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import stores.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_entities_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_entities")),
        sa.UniqueConstraint("id", name=op.f("uq_entities_id")),
    )
    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.create_index("uq_entities_scope_key", ["tenant_id", "user_id", "key"], unique=True)

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_jobs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_state_updated", ["state", "updated_at"], unique=False)
        batch_op.create_index("ix_jobs_tenant_created", ["tenant_id", "created_at"], unique=False)

    op.create_table(
        "memory_entities",
        sa.Column(
            "memory_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "entity_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["entity_pk"],
            ["entities.pk"],
            name=op.f("fk_memory_entities_entity_pk_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["memory_pk"],
            ["memories.pk"],
            name=op.f("fk_memory_entities_memory_pk_memories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_memory_entities_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("memory_pk", "entity_pk", name=op.f("pk_memory_entities")),
    )
    with op.batch_alter_table("memory_entities", schema=None) as batch_op:
        batch_op.create_index("ix_memory_entities_entity", ["entity_pk"], unique=False)

    op.create_table(
        "relations",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column(
            "source_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "target_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("memory_pk", sa.BigInteger(), nullable=True),
        sa.Column("valid_from", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("valid_to", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_pk"],
            ["entities.pk"],
            name=op.f("fk_relations_source_pk_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_pk"],
            ["entities.pk"],
            name=op.f("fk_relations_target_pk_entities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_relations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_relations")),
        sa.UniqueConstraint("id", name=op.f("uq_relations_id")),
    )
    with op.batch_alter_table("relations", schema=None) as batch_op:
        batch_op.create_index("ix_relations_memory", ["memory_pk"], unique=False)
        batch_op.create_index(
            "ix_relations_scope_source", ["tenant_id", "user_id", "source_pk"], unique=False
        )
        batch_op.create_index("ix_relations_target", ["target_pk"], unique=False)

    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("strength", sa.Float(), server_default="1.0", nullable=False))
        batch_op.add_column(
            sa.Column("access_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("last_accessed_at", stores.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("archived_at", stores.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("slot", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("episode_id", sa.String(length=36), nullable=True))
        batch_op.create_index(
            "ix_memories_tenant_episode", ["tenant_id", "episode_id"], unique=False
        )
        batch_op.create_index("ix_memories_tenant_slot", ["tenant_id", "slot"], unique=False)

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("extracted_upto", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("extracted_count", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("extracted_count")
        batch_op.drop_column("extracted_upto")

    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.drop_index("ix_memories_tenant_slot")
        batch_op.drop_index("ix_memories_tenant_episode")
        batch_op.drop_column("episode_id")
        batch_op.drop_column("slot")
        batch_op.drop_column("archived_at")
        batch_op.drop_column("last_accessed_at")
        batch_op.drop_column("access_count")
        batch_op.drop_column("strength")

    with op.batch_alter_table("relations", schema=None) as batch_op:
        batch_op.drop_index("ix_relations_target")
        batch_op.drop_index("ix_relations_scope_source")
        batch_op.drop_index("ix_relations_memory")

    op.drop_table("relations")
    with op.batch_alter_table("memory_entities", schema=None) as batch_op:
        batch_op.drop_index("ix_memory_entities_entity")

    op.drop_table("memory_entities")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_tenant_created")
        batch_op.drop_index("ix_jobs_state_updated")

    op.drop_table("jobs")
    with op.batch_alter_table("entities", schema=None) as batch_op:
        batch_op.drop_index("uq_entities_scope_key")

    op.drop_table("entities")
