"""Whole scopes (a user, an agent, a session): purge now; export and import alongside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memsvc.schemas.purge import PurgeResult, PurgeScope
from memsvc.service import purge, transfer
from memsvc.service.deps import ServiceDeps
from memsvc.service.transfer import ImportReport, Progress

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

    def export(
        self,
        tenant_id: str,
        target: Path,
        *,
        user_id: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Write the tenant's (or one user's) archive to ``target``; returns its manifest
        (docs/export-format.md)."""
        return transfer.export_archive(
            self.deps, tenant_id, target, user_id=user_id, progress=progress
        )

    def import_(
        self, tenant_id: str, archive: Path, *, progress: Progress | None = None
    ) -> ImportReport:
        """Import an archive into the tenant: ids kept, the same row skipped, a different
        row with the same id reported as a conflict (never merged); indexes synced after."""
        return transfer.import_archive(self.deps, archive, tenant_id, progress=progress)
