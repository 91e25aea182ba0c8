# Generated from memsvc/sdk/_async/project.py by scripts/unasync_sdk.py: do not edit;
# change the async source and run the script.
"""Project-wide settings calls of the client: extraction instructions and categories, webhooks.

Written asynchronous in ``memsvc/sdk/_async/project.py``; ``memsvc/sdk/_sync/project.py`` is
generated from it by ``scripts/unasync_sdk.py``. A mixin of the client: it goes through the
client's public :meth:`request` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from memsvc.schemas.extraction import (
    CategorySpec,
    ExtractionConfigPublic,
    ExtractionConfigUpdate,
    ExtractionScopeParams,
)
from memsvc.schemas.webhooks import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryListParams,
    WebhookDeliveryPublic,
    WebhookPublic,
)
from memsvc.sdk._base import build

__all__ = ["ProjectMixin"]


class ProjectMixin:
    """Extraction configuration (versioned) and webhook subscriptions of the tenant."""

    request: Any  # the client's

    def get_extraction_config(
        self, *, user_id: str | None = None, agent_id: str | None = None
    ) -> ExtractionConfigPublic:
        """The extraction configuration in use for a scope (``version`` 0: none stored)."""
        query = build(ExtractionScopeParams, user_id=user_id, agent_id=agent_id)
        return self.request("extraction-get_extraction_config", query=query)

    def set_extraction_config(
        self,
        *,
        instructions: str = "",
        categories: Sequence[Mapping[str, Any] | CategorySpec] = (),
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> ExtractionConfigPublic:
        """Store a new version of a scope's extraction instructions and categories
        (``{"name", "keywords", "description"}``); returns it."""
        body = build(
            ExtractionConfigUpdate,
            instructions=instructions,
            categories=[
                c.model_dump() if isinstance(c, CategorySpec) else dict(c) for c in categories
            ],
            user_id=user_id,
            agent_id=agent_id,
        )
        return self.request("extraction-put_extraction_config", body=body)

    def list_extraction_config_versions(
        self, *, user_id: str | None = None, agent_id: str | None = None
    ) -> list[ExtractionConfigPublic]:
        """Every stored version of exactly this scope's configuration, newest first."""
        query = build(ExtractionScopeParams, user_id=user_id, agent_id=agent_id)
        listed = self.request("extraction-list_extraction_config_versions", query=query)
        return listed.data

    # -- webhooks ----------------------------------------------------------------------------

    def create_webhook(
        self, url: str, event_types: Sequence[str], *, description: str = ""
    ) -> WebhookCreated:
        """Subscribe ``url`` to change events; keep the returned ``secret`` (shown once) to
        verify signatures (``memsvc.webhook_signature.verify``)."""
        body = build(WebhookCreate, url=url, event_types=list(event_types), description=description)
        return self.request("webhooks-create_webhook", body=body)

    def list_webhooks(self) -> list[WebhookPublic]:
        """The tenant's subscriptions (without secrets)."""
        return (self.request("webhooks-list_webhooks")).data

    def delete_webhook(self, webhook_id: str) -> None:
        self.request("webhooks-delete_webhook", path={"webhook_id": webhook_id})

    def list_webhook_deliveries(
        self, webhook_id: str, *, state: str | None = None, limit: int = 50
    ) -> list[WebhookDeliveryPublic]:
        """Deliveries of a subscription, newest first, each with its attempts."""
        query = build(WebhookDeliveryListParams, state=state, limit=limit)
        path = {"webhook_id": webhook_id}
        return (self.request("webhooks-list_deliveries", path=path, query=query)).data
