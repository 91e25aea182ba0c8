"""kv: the blob registry (one row per stored blob; the lock that orders upload and collection)

Revision ID: 0006_kv_blob_registry
Revises: 0005
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import stores.models

revision: str = "0006_kv_blob_registry"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kv_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", stores.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_kv_blobs")),
    )
    # every blob a row points at is registered (blobs no row points at are found by the sweep)
    op.execute(
        "INSERT INTO kv_blobs (sha256, size_bytes, created_at) "
        "SELECT blob_sha256, MAX(size_bytes), MIN(created_at) FROM kv_caches GROUP BY blob_sha256"
    )


def downgrade() -> None:
    op.drop_table("kv_blobs")
