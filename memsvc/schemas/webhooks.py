"""Webhooks: subscriptions to change events, and the record of their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from memsvc.schemas.common import Strict

__all__ = [
    "EVENT_TYPES",
    "WebhookAttemptPublic",
    "WebhookCreate",
    "WebhookCreated",
    "WebhookDeliveryListParams",
    "WebhookDeliveryPublic",
    "WebhookEventType",
    "WebhookPublic",
]

WebhookEventType = Literal[
    "memory.added",
    "memory.updated",
    "memory.deleted",
    "memory.invalidated",
    "job.finished",
    "session.consolidated",
]
EVENT_TYPES: tuple[str, ...] = WebhookEventType.__args__  # type: ignore[attr-defined]
DeliveryState = Literal["pending", "delivered", "failed"]


class WebhookCreate(Strict):
    """A subscription: where to POST, and which events."""

    url: str = Field(
        min_length=8,
        max_length=2000,
        description="http(s) URL whose host the server allows (MEMSVC_WEBHOOKS__ALLOWED_HOSTS).",
    )
    event_types: list[WebhookEventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    description: str = Field(default="", max_length=200)


class WebhookPublic(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str = ""
    created_at: datetime


class WebhookCreated(WebhookPublic):
    """The new subscription with its signing secret: shown in this response only."""

    secret: str


class WebhookAttemptPublic(BaseModel):
    attempt: int
    at: datetime
    outcome: Literal["delivered", "retry", "failed"]
    status_code: int | None = None
    error: str | None = None
    duration_ms: float


class WebhookDeliveryPublic(BaseModel):
    """One event for one subscription, with every attempt made to deliver it."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    payload: dict[str, Any]
    attempt_log: list[WebhookAttemptPublic] = Field(default_factory=list)


class WebhookDeliveryListParams(Strict):
    limit: int = Field(default=50, ge=1, le=500)
    state: DeliveryState | None = None
