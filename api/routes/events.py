"""``/v1/events``: the chat event log (write path into sensory and working memory)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import ValidationError

from api.deps import ServiceDep, TenantDep
from memsvc.errors import InvalidRequestError
from memsvc.schemas import EventBatch, EventFilter, EventPublic, EventRole, ListEnvelope, Page

router = APIRouter(prefix="/events", tags=["events"])


@router.post("", status_code=201)
def add_events(
    body: EventBatch, principal: TenantDep, service: ServiceDep
) -> ListEnvelope[EventPublic]:
    """Append events; they are durable when this answers. Returns them with gate decisions."""
    written = service.add_events(principal.tenant_id, body)
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
    try:
        filters = EventFilter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            role=role,
            after=after,
            before=before,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "filters"
        raise InvalidRequestError(f"{field}: {err['msg']}", field=field) from exc
    return service.list_events(principal.tenant_id, filters, limit=limit, cursor=cursor)
