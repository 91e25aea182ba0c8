"""``Memory``: the whole service in-process, no server. The surface of :class:`MemoryClient`,
by construction: it *is* that client, over an in-process transport.

Data lives under ``data_dir`` (SQLite + faiss snapshots) unless ``MEMSVC_DATABASE_URL`` points
elsewhere. Everything is stored for the ``local`` tenant unless another is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from consolidation.dispatch import build_service
from memsvc.sdk._sync.client import MemoryClient
from memsvc.sdk.in_process import InProcessTransport
from memsvc.service import LOCAL_TENANT_ID, MemoryService, Principal
from memsvc.settings import Settings

if TYPE_CHECKING:
    from memsvc.embeddings import Embedder

__all__ = ["Memory"]


class Memory(MemoryClient):
    """An embedded memory service for one tenant.

    Every call goes through :func:`memsvc.service.handlers.dispatch`, the entry the REST routes
    use, so a ``Memory`` answers (and refuses) exactly as a server would.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        service: MemoryService | None = None,
        tenant_id: str = LOCAL_TENANT_ID,
        actor: str = "embedded",
    ) -> None:
        if settings is None:
            settings = Settings() if data_dir is None else Settings(data_dir=Path(data_dir))
        elif data_dir is not None:
            settings = settings.model_copy(update={"data_dir": Path(data_dir)})
        self._owns_service = service is None
        self.service = service or build_service(settings, embedder=embedder)
        self.tenant_id = tenant_id
        self.actor = actor
        principal = Principal(tenant_id=tenant_id, key_id="embedded", name=actor)
        super().__init__(transport=InProcessTransport(self.service, principal))
        if self._owns_service and tenant_id == LOCAL_TENANT_ID:
            self.service.tenants.ensure_local_key()  # creates the local tenant on first use
        if self._owns_service:  # deliveries of existing subscriptions keep going
            self.service.webhooks.start_sender(if_subscribed=True)

    def close(self) -> None:
        """Close the client, and the service when this ``Memory`` made it."""
        super().close()
        if self._owns_service:
            self._owns_service = False  # closed once
            self.service.close()
