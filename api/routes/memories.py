"""``/v1/memories``: add, list, get, update, delete, history."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import ValidationError

from api.deps import IdempotencyDep, ServiceDep, TenantDep
from memsvc.errors import InvalidRequestError
from memsvc.schemas import (
    DeleteResult,
    ListEnvelope,
    MemoryAddBody,
    MemoryBatch,
    MemoryFilter,
    MemoryHistoryEntry,
    MemoryKind,
    MemoryPublic,
    MemoryUpdate,
    MemoryWriteResult,
    Page,
)

router = APIRouter(prefix="/memories", tags=["memories"])


async def memory_filter(
    user_id: str | None = None,
    agent_id: str | None = None,
    session_id: str | None = None,
    kind: Annotated[list[MemoryKind] | None, Query()] = None,
    metadata: Annotated[
        str | None, Query(description='JSON object of metadata equalities, e.g. {"topic": "x"}')
    ] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    occurred_after: datetime | None = None,
    occurred_before: datetime | None = None,
    as_of: datetime | None = None,
    include_archived: bool = False,
) -> MemoryFilter:
    """Filters given as query parameters, validated like a ``MemoryFilter`` body."""
    parsed_metadata = None
    if metadata is not None:
        try:
            parsed_metadata = json.loads(metadata)
        except ValueError as exc:
            raise InvalidRequestError("metadata must be a JSON object", field="metadata") from exc
    try:
        return MemoryFilter(
            user_id=user_id,
            agent_id=agent_id,
            session_id=session_id,
            kind=kind or None,
            metadata=parsed_metadata,
            created_after=created_after,
            created_before=created_before,
            occurred_after=occurred_after,
            occurred_before=occurred_before,
            as_of=as_of,
            include_archived=include_archived,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "filters"
        raise InvalidRequestError(f"{field}: {err['msg']}", field=field) from exc


FilterDep = Annotated[MemoryFilter, Depends(memory_filter)]


@router.post("", status_code=201)
def add(
    body: MemoryAddBody, principal: TenantDep, service: ServiceDep, idempotency: IdempotencyDep
) -> ListEnvelope[MemoryWriteResult]:
    """Store one memory, or a batch as ``{"items": [...]}`` (all or nothing).
    With ``Idempotency-Key``, the reply is stored with the memories: a retry gets it back."""
    single = not isinstance(body, MemoryBatch)
    items = [body] if single else body.items
    written = service.add(
        principal.tenant_id,
        items,
        actor=principal.actor,
        single=single,
        idempotency=idempotency,
    )
    return ListEnvelope(data=written, count=len(written))


@router.get("")
def list_memories(
    principal: TenantDep,
    service: ServiceDep,
    filters: FilterDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    order: Literal["asc", "desc"] = "desc",
) -> Page[MemoryPublic]:
    """A page of memories (newest first by default); follow ``next_cursor`` for more."""
    return service.list(principal.tenant_id, filters, limit=limit, cursor=cursor, order=order)


@router.delete("")
def delete_by_scope(principal: TenantDep, service: ServiceDep, filters: FilterDep) -> DeleteResult:
    """Delete every memory of a scope (``user_id``, ``agent_id`` or ``session_id`` required)."""
    return DeleteResult(
        deleted=service.delete_all(principal.tenant_id, filters, actor=principal.actor)
    )


@router.get("/{memory_id}")
def get(memory_id: str, principal: TenantDep, service: ServiceDep) -> MemoryPublic:
    return service.get(principal.tenant_id, memory_id)


@router.patch("/{memory_id}")
def update(
    memory_id: str, body: MemoryUpdate, principal: TenantDep, service: ServiceDep
) -> MemoryPublic:
    """Change the given fields only; a new ``text`` is re-embedded."""
    changes = body.model_dump(exclude_unset=True)
    return service.update(principal.tenant_id, memory_id, changes, actor=principal.actor)


@router.delete("/{memory_id}")
def delete(memory_id: str, principal: TenantDep, service: ServiceDep) -> DeleteResult:
    service.delete(principal.tenant_id, memory_id, actor=principal.actor)
    return DeleteResult(deleted=1)


@router.get("/{memory_id}/history")
def history(
    memory_id: str, principal: TenantDep, service: ServiceDep
) -> ListEnvelope[MemoryHistoryEntry]:
    """Every mutation of the memory, oldest first."""
    entries = service.history(principal.tenant_id, memory_id)
    return ListEnvelope(data=entries, count=len(entries))


@router.post("/{memory_id}/restore")
def restore(memory_id: str, principal: TenantDep, service: ServiceDep) -> MemoryPublic:
    """Bring an archived (decayed) memory back into default search."""
    return service.restore(principal.tenant_id, memory_id, actor=principal.actor)
