"""Versions of each project's extraction configuration. Persistence only, tenant-filtered."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stores.models import ExtractionConfigRow

__all__ = ["add_version", "latest_versions", "next_version", "versions"]


def next_version(tenant_id: str, user_id: str, agent_id: str, *, session: Session) -> int:
    """The number the next version of this scope gets (1 for the first)."""
    top = session.scalar(
        select(func.max(ExtractionConfigRow.version)).where(
            ExtractionConfigRow.tenant_id == tenant_id,
            ExtractionConfigRow.user_id == user_id,
            ExtractionConfigRow.agent_id == agent_id,
        )
    )
    return (top or 0) + 1


def add_version(row: ExtractionConfigRow, *, session: Session) -> None:
    """Append a version; two writers racing for one number: the unique constraint refuses
    the second (IntegrityError at flush)."""
    session.add(row)
    session.flush()


def latest_versions(
    tenant_id: str, scopes: Sequence[tuple[str, str]], *, session: Session
) -> dict[tuple[str, str], ExtractionConfigRow]:
    """The newest version of each (user_id, agent_id) scope that has one."""
    found: dict[tuple[str, str], ExtractionConfigRow] = {}
    for user_id, agent_id in dict.fromkeys(scopes):
        row = session.scalars(
            select(ExtractionConfigRow)
            .where(
                ExtractionConfigRow.tenant_id == tenant_id,
                ExtractionConfigRow.user_id == user_id,
                ExtractionConfigRow.agent_id == agent_id,
            )
            .order_by(ExtractionConfigRow.version.desc())
            .limit(1)
        ).first()
        if row is not None:
            found[(user_id, agent_id)] = row
    return found


def versions(
    tenant_id: str, user_id: str, agent_id: str, *, limit: int, session: Session
) -> list[ExtractionConfigRow]:
    """Every version of one scope, newest first."""
    return list(
        session.scalars(
            select(ExtractionConfigRow)
            .where(
                ExtractionConfigRow.tenant_id == tenant_id,
                ExtractionConfigRow.user_id == user_id,
                ExtractionConfigRow.agent_id == agent_id,
            )
            .order_by(ExtractionConfigRow.version.desc())
            .limit(limit)
        )
    )
