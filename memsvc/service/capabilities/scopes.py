"""Whole scopes (a user, an agent, a session): purge now; export and import alongside."""

from __future__ import annotations

from memsvc.schemas.purge import PurgeResult, PurgeScope
from memsvc.service import purge
from memsvc.service.deps import ServiceDeps

__all__ = ["Scopes"]


class Scopes:
    """Operations on everything one user, agent or session left in the service."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps

    def purge(
        self, tenant_id: str, kind: PurgeScope, scope_id: str, *, actor: str = ""
    ) -> PurgeResult:
        """Erase every trace of the scope (docs/security.md, "Purge"); returns the audit."""
        return purge.purge_scope(self.deps, tenant_id, kind, scope_id, actor=actor)
