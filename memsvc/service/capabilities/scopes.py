"""Whole scopes (a user, an agent, a session): purge now; export and import alongside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memsvc.schemas import JobPublic
from memsvc.schemas.purge import PurgeResult, PurgeScope
from memsvc.schemas.transfer import ExportRequest
from memsvc.service import exports, purge, transfer
from memsvc.service.deps import ServiceDeps
from memsvc.service.exports import ExportContent
from memsvc.service.runtime import BackgroundRuntime
from memsvc.service.transfer import ImportReport, Progress

__all__ = ["Scopes"]


class Scopes:
    """Operations on everything one user, agent or session left in the service."""

    def __init__(self, deps: ServiceDeps, runtime: BackgroundRuntime) -> None:
        self.deps, self.runtime = deps, runtime

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

    def request_export(self, tenant_id: str, request: ExportRequest) -> JobPublic:
        """Write the archive in the background; returns the job (see get_export)."""
        return exports.request_export(self.deps, self.runtime, tenant_id, request)

    def get_export(self, tenant_id: str, export_id: str) -> JobPublic:
        return exports.get_export(self.deps, tenant_id, export_id)

    def open_export(self, tenant_id: str, export_id: str) -> ExportContent:
        """The finished archive, opened to stream (409 while it is being written)."""
        return exports.open_export(self.deps, tenant_id, export_id)
