"""events and sessions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:49:01.319576
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import stores.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
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
        sa.Column("session_id", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("speaker", sa.String(length=200), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("event_time", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("pieces", sa.JSON(), nullable=False),
        sa.Column("embeddings", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("promoted_at", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_tenant_pk", ["tenant_id", "pk"], unique=False)
        batch_op.create_index(
            "ix_events_tenant_session_time",
            ["tenant_id", "session_id", "event_time", "pk"],
            unique=False,
        )
        batch_op.create_index(
            "ix_events_tenant_user_pk", ["tenant_id", "user_id", "pk"], unique=False
        )
        batch_op.create_index(
            "ix_events_unpromoted", ["tenant_id", "session_id", "promoted_at"], unique=False
        )

    op.create_table(
        "sessions",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("agent_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_event_at", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("kept_count", sa.Integer(), nullable=False),
        sa.Column("promoted_count", sa.Integer(), nullable=False),
        sa.Column("closed_at", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consolidated_at", stores.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sessions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_tenant_user", ["tenant_id", "user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_tenant_user")

    op.drop_table("sessions")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_unpromoted")
        batch_op.drop_index("ix_events_tenant_user_pk")
        batch_op.drop_index("ix_events_tenant_session_time")
        batch_op.drop_index("ix_events_tenant_pk")

    op.drop_table("events")
