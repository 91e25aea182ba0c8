"""How much each scope of a tenant holds: memories per user, agent and session.

Persistence only: one grouped count per scope column, tenant-filtered, tombstones left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from stores.models import MemoryRow

__all__ = ["ScopeCount", "scope_counts"]

_COLUMNS = {
    "user_id": MemoryRow.user_id,
    "agent_id": MemoryRow.agent_id,
    "session_id": MemoryRow.session_id,
}


@dataclass(frozen=True)
class ScopeCount:
    value: str
    memories: int  # live (not deleted), archived ones included
    archived: int


def scope_counts(tenant_id: str, scope: str, *, limit: int, session: Session) -> list[ScopeCount]:
    """The ``limit`` ids of one scope column (``user_id``, ``agent_id`` or ``session_id``)
    holding the most live memories of the tenant, with their counts."""
    column = _COLUMNS[scope]
    archived = func.sum(case((MemoryRow.archived_at.is_not(None), 1), else_=0))
    stmt = (
        select(column, func.count(), archived)
        .where(MemoryRow.tenant_id == tenant_id, MemoryRow.deleted_at.is_(None))
        .where(column.is_not(None))
        .group_by(column)
        .order_by(func.count().desc(), column)
        .limit(limit)
    )
    return [ScopeCount(v, int(n), int(a or 0)) for v, n, a in session.execute(stmt)]
