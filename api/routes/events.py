"""``/v1/events``: the chat event log (write path into sensory and working memory)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import IdempotencyDep, ServiceDep, TenantDep
from memsvc.schemas import EventBatch, EventPublic, EventRole, ListEnvelope, Page
from stores.events import EventQuery

router = APIRouter(prefix="/events", tags=["events"])


@router.post("", status_code=201)
def add_events(
    body: EventBatch, principal: TenantDep, service: ServiceDep, idempotency: IdempotencyDep
) -> ListEnvelope[EventPublic]:
    """Append events; they are durable when this answers. Returns them with gate decisions.
    With ``Idempotency-Key``, the reply is stored with the events: a retry gets it back."""
    written = service.add_events(principal.tenant_id, body, idempotency=idempotency)
    return ListEnvelope(data=written, count=len(written))


@router.get("")
def list_events(
    principal: TenantDep,
    service: ServiceDep,
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    role: EventRole | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[EventPublic]:
    """Events in write order, filtered by scope, role and event time."""
    query = EventQuery(
        tenant_id=principal.tenant_id,
        user_id=user_id,
        agent_id=agent_id,
        session_id=session_id,
        role=role,
        after=after,
        before=before,
    )
    return service.list_events(principal.tenant_id, query, limit=limit, cursor=cursor)
