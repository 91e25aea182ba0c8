"""The scopes of a tenant (users, agents, sessions) and how many memories each holds."""

from __future__ import annotations

from memsvc.errors import InvalidRequestError
from memsvc.schemas.scopes import ScopeCount, ScopeSummary
from memsvc.service.deps import ServiceDeps
from stores import scopes as store

__all__ = ["scope_summary"]


def scope_summary(deps: ServiceDeps, tenant_id: str, *, limit: int = 200) -> ScopeSummary:
    """Per kind of scope, the ``limit`` ids holding the most live memories."""
    if not 1 <= limit <= 1000:
        raise InvalidRequestError("limit must be between 1 and 1000", field="limit")
    with deps.sessions() as session:
        found = {
            scope: [
                ScopeCount(id=c.value, memories=c.memories, archived=c.archived)
                for c in store.scope_counts(tenant_id, scope, limit=limit, session=session)
            ]
            for scope in ("user_id", "agent_id", "session_id")
        }
    return ScopeSummary(
        users=found["user_id"], agents=found["agent_id"], sessions=found["session_id"]
    )
