# Generated from memsvc/sdk/_async/scopes.py by scripts/unasync_sdk.py: do not edit;
# change the async source and run the script.
"""Whole-scope calls of the client: purge a user, agent or session; export and import.

Written asynchronous in ``memsvc/sdk/_async/scopes.py``; ``memsvc/sdk/_sync/scopes.py`` is
generated from it by ``scripts/unasync_sdk.py``. A mixin of the client: it goes through the
client's public :meth:`request` and :meth:`download` only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from memsvc.schemas import JobPublic
from memsvc.schemas.purge import PurgeParams, PurgeResult
from memsvc.schemas.transfer import ExportRequest, ImportResult
from memsvc.sdk._base import build

__all__ = ["ScopesMixin"]


class ScopesMixin:
    """Purge, export and import (docs/security.md "Purge", docs/export-format.md)."""

    request: Any  # the client's
    download: Any

    def purge(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
    ) -> PurgeResult:
        """Erase every trace of one user, agent or session (exactly one): memories and their
        history, events, sessions, working memory, its graph, KV caches, index entries.
        Unlike :meth:`delete_all` nothing stays behind; returns the audit record."""
        given = {"user": user_id, "agent": agent_id, "session": session_id}
        chosen = [(kind, value) for kind, value in given.items() if value is not None]
        if len(chosen) != 1:
            raise TypeError("purge takes exactly one of user_id, agent_id, session_id")
        ((kind, value),) = chosen
        return self.request(
            f"{kind}s-purge_{kind}", path={f"{kind}_id": value}, query=PurgeParams(purge=True)
        )

    def create_export(self, *, user_id: str | None = None) -> JobPublic:
        """Start exporting the tenant (or one user) to an archive; returns the job."""
        body = build(ExportRequest, user_id=user_id)
        return self.request("exports-create_export", body=body)

    def get_export(self, export_id: str) -> JobPublic:
        """The export job: state, counts, the archive's size when done."""
        return self.request("exports-get_export", path={"export_id": export_id})

    def download_export(self, export_id: str, path: str | os.PathLike[str]) -> Path:
        """Save the finished archive to ``path`` (409 while it is being written)."""
        where = {"export_id": export_id}
        with self.download("exports-get_export_content", path=where) as file:
            shutil.copyfile(file, path)
        return Path(path)

    def import_archive(self, path: str | os.PathLike[str]) -> ImportResult:
        """Import an archive (``memsvc export``, an export's download) into this tenant."""
        return self.request("exports-import_archive", upload=Path(path))
