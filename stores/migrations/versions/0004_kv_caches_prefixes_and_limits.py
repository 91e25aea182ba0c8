"""kv: caches (cartridges and episodic), their token-hash prefixes, per-tenant limits

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:41:21.043817
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import stores.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "kv_caches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("codec", sa.JSON(), nullable=False),
        sa.Column("dtype", sa.String(length=16), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.Column("start_position", sa.Integer(), nullable=False),
        sa.Column("bits_per_elem", sa.Float(), nullable=False),
        sa.Column("origin", sa.JSON(), nullable=False),
        sa.Column("session_id", sa.String(length=200), nullable=True),
        sa.Column("episode_id", sa.String(length=200), nullable=True),
        sa.Column("corpus_id", sa.String(length=200), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_kv_caches_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kv_caches")),
    )
    with op.batch_alter_table("kv_caches", schema=None) as batch_op:
        batch_op.create_index("ix_kv_caches_blob", ["blob_sha256"], unique=False)
        batch_op.create_index(
            "ix_kv_caches_tenant_kind_model", ["tenant_id", "kind", "model_id"], unique=False
        )
        batch_op.create_index(
            "ix_kv_caches_tenant_session", ["tenant_id", "session_id", "episode_id"], unique=False
        )

    op.create_table(
        "kv_limits",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger(), nullable=True),
        sa.Column("retention_bytes", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_kv_limits_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_kv_limits")),
    )
    op.create_table(
        "kv_prefixes",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kv_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("prefix_hash", sa.String(length=64), nullable=False),
        sa.Column("n_tokens", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["kv_id"],
            ["kv_caches.id"],
            name=op.f("fk_kv_prefixes_kv_id_kv_caches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_kv_prefixes")),
    )
    with op.batch_alter_table("kv_prefixes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kv_prefixes_kv_id"), ["kv_id"], unique=False)
        batch_op.create_index(
            "ix_kv_prefixes_lookup", ["tenant_id", "model_id", "prefix_hash"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("kv_prefixes", schema=None) as batch_op:
        batch_op.drop_index("ix_kv_prefixes_lookup")
        batch_op.drop_index(batch_op.f("ix_kv_prefixes_kv_id"))

    op.drop_table("kv_prefixes")
    op.drop_table("kv_limits")
    with op.batch_alter_table("kv_caches", schema=None) as batch_op:
        batch_op.drop_index("ix_kv_caches_tenant_session")
        batch_op.drop_index("ix_kv_caches_tenant_kind_model")
        batch_op.drop_index("ix_kv_caches_blob")

    op.drop_table("kv_caches")
