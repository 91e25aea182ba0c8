"""extraction_configs (versioned instructions and categories per tenant/scope), and
events.facts_extracted_at (facts extracted on write: consolidation leaves them alone)

Revision ID: 0009_extraction_config
Revises: 0008_job_state_check
Create Date: 2026-12-02 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import stores.models

revision: str = "0009_extraction_config"
down_revision: str | None = "0008_job_state_check"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "extraction_configs",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("agent_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_extraction_configs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_extraction_configs")),
        sa.UniqueConstraint(
            "tenant_id", "user_id", "agent_id", "version", name="uq_extraction_configs_version"
        ),
    )
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("facts_extracted_at", stores.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("facts_extracted_at")
    op.drop_table("extraction_configs")
