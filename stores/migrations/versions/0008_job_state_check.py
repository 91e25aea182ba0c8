"""jobs: a CHECK constraint keeps ``state`` one of the job states

Revision ID: 0008_job_state_check
Revises: 0007_idempotency_keys
Create Date: 2026-12-01 23:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_job_state_check"
down_revision: str | None = "0007_idempotency_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out (not imported): a migration describes the schema as it was at this revision.
_STATES = "state IN ('queued', 'running', 'succeeded', 'failed')"


def upgrade() -> None:
    # Batch mode: SQLite cannot add a constraint in place, so the table is copied.
    with op.batch_alter_table("jobs") as batch:
        batch.create_check_constraint("ck_jobs_state", _STATES)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("ck_jobs_state", type_="check")
