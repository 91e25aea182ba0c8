"""Exports as jobs (``POST /v1/exports``): the archive is written in the background, the job
row says how far it is, and the finished archive is served from ``<data_dir>/exports``.

The job runs on the process's background runtime (like cartridge training), so the archive
lies in the data directory of the replica that took the request; replicas behind one address
need that directory shared (docs/export-format.md). A purge deletes every archive that may
hold the purged scope (the tenant's whole-tenant exports and the user's own).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from memsvc.errors import ConflictError, NotFoundError
from memsvc.schemas import JobPublic
from memsvc.schemas.transfer import ExportRequest
from memsvc.service.deps import ServiceDeps
from memsvc.service.jobs import job_public, new_job_row
from memsvc.service.runtime import BackgroundRuntime
from memsvc.service.transfer import export_archive
from memsvc.vocabulary import JobState
from stores import jobs as job_store
from stores.models import utcnow

__all__ = ["ExportContent", "export_path", "forget_exports", "get_export", "open_export",
           "request_export"]  # fmt: skip

log = logging.getLogger(__name__)

JOB_KIND = "export"
MEDIA_TYPE = "application/zip"


def export_path(deps: ServiceDeps, job_id: str) -> Path:
    return deps.settings.data_dir / "exports" / f"{job_id}.zip"


def request_export(
    deps: ServiceDeps, runtime: BackgroundRuntime, tenant_id: str, request: ExportRequest
) -> JobPublic:
    """Create the export job and start it in the background; returns the job."""
    row = new_job_row(tenant_id, "request", {"user_id": request.user_id})
    row.kind = JOB_KIND
    with deps.sessions.begin() as session:
        job_store.add_job(row, session=session)
    runtime.submit(run_export_job, deps, row.id, tenant_id, request.user_id)
    return job_public(row)


def run_export_job(deps: ServiceDeps, job_id: str, tenant_id: str, user_id: str | None) -> None:
    """Write the archive; any failure is recorded on the job (never raised)."""
    _update(deps, job_id, state=JobState.RUNNING, attempts=1, started_at=utcnow(), step="export")
    target = export_path(deps, job_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    try:
        manifest = export_archive(deps, tenant_id, partial, user_id=user_id)
        partial.replace(target)
    except Exception as exc:  # job boundary: the failure is recorded, the thread lives on
        log.exception("export job %s failed", job_id)
        partial.unlink(missing_ok=True)
        error = {
            "at": utcnow().isoformat(),
            "step": "export",
            "error": f"{type(exc).__name__}: {exc}",
        }
        _update(deps, job_id, state=JobState.FAILED, errors=[error], finished_at=utcnow())
        return
    scope = {
        "user_id": user_id,
        "size_bytes": target.stat().st_size,
        "format": manifest["format"],
        "version": manifest["version"],
    }
    _update(
        deps,
        job_id,
        state=JobState.SUCCEEDED,
        counts=manifest["counts"],
        scope={k: v for k, v in scope.items() if v is not None},
        finished_at=utcnow(),
    )


def _row(deps: ServiceDeps, tenant_id: str, job_id: str) -> Any:
    with deps.sessions() as session:
        row = job_store.get_job(job_id, tenant_id=tenant_id, session=session)
    if row is None or row.kind != JOB_KIND:
        raise NotFoundError(f"export {job_id} not found", field="export_id")
    return row


def get_export(deps: ServiceDeps, tenant_id: str, job_id: str) -> JobPublic:
    return job_public(_row(deps, tenant_id, job_id))


@dataclass
class ExportContent:
    """A finished archive to stream (the file opened before answering)."""

    job_id: str
    size_bytes: int
    file: BinaryIO
    media_type: str = MEDIA_TYPE

    def http_headers(self) -> dict[str, str]:
        return {
            "Content-Length": str(self.size_bytes),
            "Content-Disposition": f'attachment; filename="memsvc-export-{self.job_id}.zip"',
        }

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        with self.file as f:
            while block := f.read(size):
                yield block


def open_export(deps: ServiceDeps, tenant_id: str, job_id: str) -> ExportContent:
    row = _row(deps, tenant_id, job_id)
    if row.state != JobState.SUCCEEDED:
        raise ConflictError(f"export {job_id} is {row.state}; its archive is not ready")
    path = export_path(deps, job_id)
    try:
        file = path.open("rb")
    except FileNotFoundError as exc:
        raise NotFoundError(f"the archive of export {job_id} is gone", field="export_id") from exc
    return ExportContent(job_id, path.stat().st_size, file)


def forget_exports(deps: ServiceDeps, job_ids: list[str]) -> None:
    """Delete the archives of these export jobs (their rows are deleted by the caller)."""
    for job_id in job_ids:
        export_path(deps, job_id).unlink(missing_ok=True)
        export_path(deps, job_id).with_suffix(".part").unlink(missing_ok=True)


def _update(deps: ServiceDeps, job_id: str, **values: Any) -> None:
    with deps.sessions.begin() as session:
        job_store.update_job(job_id, {**values, "updated_at": utcnow()}, session=session)
