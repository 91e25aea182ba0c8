"""entities.aliases: other names merged into an entity ("Mel" into Melanie, "Deborah's mom"
into "Deborah's mother"), each with its evidence

Revision ID: 0012_entity_aliases
Revises: 0011_purge_audit
Create Date: 2026-12-02 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_entity_aliases"
# After the purge audit (0011): the migrations form one chain.
down_revision: str | None = "0011_purge_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entities") as batch:
        batch.add_column(sa.Column("aliases", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("entities") as batch:
        batch.drop_column("aliases")
