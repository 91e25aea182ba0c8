"""The mem0 routes: mem0ai's ``MemoryClient`` URLs, verbs and payloads, answered by memsvc.

Every route translates the mem0 request into calls of memsvc's operations table and hands them
to :func:`memsvc.service.handlers.dispatch` (the entry ``/v1`` and the embedded ``Memory`` use),
then reshapes the reply (``api.mem0.shapes``). mem0's ``run_id`` is memsvc's ``session_id``,
``app_id`` is kept as ``metadata.app_id``, ``timestamp`` is the event time (``occurred_at``) and
``expiration_date`` the end of validity (``valid_to``). Calls memsvc cannot honour are refused
with a 4xx/501 naming them; nothing is silently ignored that would change results.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from api.deps import ServiceDep, TenantDep
from api.mem0 import exports, shapes
from api.mem0.filters import split_filters
from api.mem0.requests import (
    MAX_EXPORT,
    AddBody,
    BatchBody,
    ListBody,
    Message,
    SearchBody,
    UpdateBody,
    list_filter,
    model,
    parse_date,
    parse_timestamp,
    refuse_options,
    run,
    scope_of,
    walk,
)
from memsvc.errors import APIStatusError, InvalidRequestError
from memsvc.schemas import (
    EventBatch,
    MemoryBatch,
    MemoryCreate,
    MemoryFilter,
    MemoryUpdate,
    SearchRequest,
)
from memsvc.schemas.params import MemoryScopeParams
from memsvc.service import MemoryService, Principal

__all__ = ["router"]

router = APIRouter(tags=["mem0"], include_in_schema=False)

# -- ping, add ------------------------------------------------------------------------------


@router.get("/v1/ping/")
async def ping(principal: TenantDep) -> dict[str, Any]:
    """What mem0ai's client checks its key with on construction."""
    tenant = principal.tenant_id
    return {"status": "ok", "org_id": tenant, "project_id": tenant, "user_email": None}


def _add_memories(
    service: MemoryService, principal: Principal, body: AddBody, messages: list[Message]
) -> list[dict[str, Any]]:
    """Each message stored as a memory (mem0's ``infer=False``)."""
    if not messages:
        return []
    scope, where = split_filters(
        body.filters, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id
    )
    if where is not None:
        raise InvalidRequestError("add: filters may only name user_id, agent_id, run_id")
    metadata = dict(body.metadata or {})
    if body.app_id is not None:
        metadata["app_id"] = body.app_id
    common: dict[str, Any] = {"metadata": metadata, **scope}
    if body.timestamp is not None:
        common["occurred_at"] = parse_timestamp(body.timestamp, "timestamp")
    if body.expiration_date is not None:
        common["valid_to"] = parse_date(body.expiration_date, "expiration_date", end=True)
    items = [model(MemoryCreate, text=m.content, **common) for m in messages]
    batch = model(MemoryBatch, items=items)
    written = run(service, principal, "memories-add", body=batch).data
    return [shapes.written(m, m.event) for m in written]


def _add_inferred(
    service: MemoryService, principal: Principal, body: AddBody
) -> list[dict[str, Any]]:
    """mem0's ``infer=True``: the turns go in as events and the facts extracted from them
    come back with their ADD/UPDATE/NOOP decisions (facts on write)."""
    scope, where = split_filters(
        body.filters, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id
    )
    if where is not None:
        raise InvalidRequestError("add: filters may only name user_id, agent_id, run_id")
    metadata = dict(body.metadata or {})
    if body.app_id is not None:
        metadata["app_id"] = body.app_id
    said = (
        {}
        if body.timestamp is None
        else {"event_time": parse_timestamp(body.timestamp, "timestamp")}
    )
    events = [
        {"role": m.role, "content": m.content, "metadata": metadata, **said} for m in body.messages
    ]
    # Events live in sessions: without mem0's run_id, each add is a session of its own.
    scope.setdefault("session_id", f"mem0-add-{uuid.uuid4().hex}")
    batch = model(EventBatch, events=events, infer=True, **scope)
    reply = run(service, principal, "events-add_events", body=batch)
    return [shapes.written(m, m.event) for m in getattr(reply, "facts", None) or []]


@router.post("/v3/memories/add/")
@router.post("/v1/memories/")
def add(body: AddBody, principal: TenantDep, service: ServiceDep) -> dict[str, Any]:
    """mem0 ``add``: messages with roles, scope ids, metadata, ``infer``."""
    refuse_options(body, "add")
    if body.infer:
        results = _add_inferred(service, principal, body)
    else:
        results = _add_memories(service, principal, body, body.messages)
    return {"results": results}


# -- search, list ---------------------------------------------------------------------------


def _expired(valid_to: datetime | None, now: datetime) -> bool:
    return valid_to is not None and valid_to <= now


@router.post("/v3/memories/search/")
@router.post("/v2/memories/search/")
def search(body: SearchBody, principal: TenantDep, service: ServiceDep) -> dict[str, Any]:
    """mem0 ``search``: v2/v3 filters (AND/OR/NOT, in, gte, lte, gt, lt, ne, contains,
    icontains, ``*``) mapped onto memsvc's hybrid search and its ``where`` filter."""
    refuse_options(body, "search")
    scope, where = scope_of(body)
    filters = model(MemoryFilter, where=where, **scope)
    request = model(
        SearchRequest, query=body.query, filters=filters, top_k=body.top_k, threshold=body.threshold
    )
    reply = run(service, principal, "search-search", body=request)
    now = datetime.now(UTC)
    results = [
        shapes.scored(r)
        for r in reply.data
        if body.show_expired or not _expired(r.memory.valid_to, now)
    ]
    return {"results": results}


@router.post("/v3/memories/")
@router.post("/v2/memories/")
def get_all(
    request: Request,
    principal: TenantDep,
    service: ServiceDep,
    body: Annotated[ListBody | None, Body()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """mem0 ``get_all``: filters, ``page``/``page_size`` (walked over memsvc's cursors)."""
    body = body or ListBody()
    refuse_options(body, "get_all")
    filters = list_filter(body)
    skip = (page - 1) * page_size
    everything, _ = walk(service, principal, filters, MAX_EXPORT)
    results = everything[skip : skip + page_size]

    def link(number: int) -> str:
        return str(request.url.include_query_params(page=number, page_size=page_size))

    return {
        "count": len(everything),
        "next": link(page + 1) if skip + page_size < len(everything) else None,
        "previous": link(page - 1) if page > 1 else None,
        "results": [shapes.memory(m) for m in results],
    }


# -- one memory -----------------------------------------------------------------------------


@router.get("/v1/memories/{memory_id}/")
def get(memory_id: str, principal: TenantDep, service: ServiceDep) -> dict[str, Any]:
    return shapes.memory(run(service, principal, "memories-get", path={"memory_id": memory_id}))


def _update(service: MemoryService, principal: Principal, memory_id: str, body: Any) -> Any:
    changes: dict[str, Any] = {}
    given = body.model_fields_set | set(body.model_extra or {})
    if body.text is not None:
        changes["text"] = body.text
    if body.metadata is not None:
        changes["metadata"] = body.metadata
    if getattr(body, "timestamp", None) is not None:
        changes["occurred_at"] = parse_timestamp(body.timestamp, "timestamp")
    if "expiration_date" in given:
        expires = getattr(body, "expiration_date", None)
        changes["valid_to"] = (
            None if expires is None else parse_date(expires, "expiration_date", end=True)
        )
    update = model(MemoryUpdate, **changes)
    return run(service, principal, "memories-update", path={"memory_id": memory_id}, body=update)


@router.put("/v1/memories/{memory_id}/")
def update(
    memory_id: str, body: UpdateBody, principal: TenantDep, service: ServiceDep
) -> dict[str, Any]:
    """mem0 ``update``: text, metadata, timestamp, expiration_date."""
    return shapes.memory(_update(service, principal, memory_id, body))


@router.delete("/v1/memories/{memory_id}/")
def delete(memory_id: str, principal: TenantDep, service: ServiceDep) -> dict[str, Any]:
    run(service, principal, "memories-delete", path={"memory_id": memory_id})
    return {"message": "Memory deleted successfully!"}


@router.get("/v1/memories/{memory_id}/history/")
def history(memory_id: str, principal: TenantDep, service: ServiceDep) -> list[dict[str, Any]]:
    entries = run(service, principal, "memories-history", path={"memory_id": memory_id}).data
    return [shapes.history_entry(e, i) for i, e in enumerate(entries)]


@router.delete("/v1/memories/")
def delete_all(
    principal: TenantDep,
    service: ServiceDep,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    app_id: str | None = None,
) -> dict[str, Any]:
    """mem0 ``delete_all``: every memory of a user, agent or run (one scope id at least)."""
    if app_id is not None:
        raise InvalidRequestError("mem0 delete_all by app_id is not supported", field="app_id")
    params = model(MemoryScopeParams, user_id=user_id, agent_id=agent_id, session_id=run_id)
    deleted = run(service, principal, "memories-delete_by_scope", query=params).deleted
    return {"message": "Memories deleted successfully!", "deleted": deleted}


# -- batches --------------------------------------------------------------------------------


def _check_all_exist(service: MemoryService, principal: Principal, body: BatchBody) -> None:
    """Every id is the caller's before anything changes (a bad id changes nothing)."""
    for i, item in enumerate(body.memories):
        try:
            run(service, principal, "memories-get", path={"memory_id": item.memory_id})
        except APIStatusError as exc:
            exc.field = f"memories[{i}].memory_id"
            raise


@router.put("/v1/batch/")
def batch_update(body: BatchBody, principal: TenantDep, service: ServiceDep) -> dict[str, Any]:
    _check_all_exist(service, principal, body)
    for item in body.memories:
        _update(service, principal, item.memory_id, item)
    return {"message": f"Successfully updated {len(body.memories)} memories"}


@router.delete("/v1/batch/")
def batch_delete(body: BatchBody, principal: TenantDep, service: ServiceDep) -> dict[str, Any]:
    _check_all_exist(service, principal, body)
    for item in body.memories:
        run(service, principal, "memories-delete", path={"memory_id": item.memory_id})
    return {"message": f"Successfully deleted {len(body.memories)} memories"}


router.include_router(exports.router)


# -- everything else ------------------------------------------------------------------------


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def unsupported(rest: str, request: Request, principal: TenantDep) -> None:
    """Any other mem0 call (entities, users, reset, projects, webhooks, feedback, summaries,
    profiles...): refused by name."""
    raise APIStatusError(
        f"the mem0 call {request.method} /{rest} is not supported by memsvc "
        "(see README, 'Coming from mem0')",
        status_code=501,
        code="not_implemented",
    )
