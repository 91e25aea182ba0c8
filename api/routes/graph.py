"""``/v1/graph``: the entity graph consolidation builds (entities, relations with validity)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ServiceDep, TenantDep
from memsvc.schemas import EntityDetail, EntityPublic, Page, RelationPublic, UtcDatetime

router = APIRouter(prefix="/graph", tags=["graph"])


@router.get("/entities")
def list_entities(
    principal: TenantDep,
    service: ServiceDep,
    user_id: str | None = None,
    type: str | None = None,
    name: Annotated[str | None, Query(description="Name prefix (case-insensitive).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[EntityPublic]:
    return service.list_entities(
        principal.tenant_id, user_id=user_id, type_=type, name=name, limit=limit, cursor=cursor
    )


@router.get("/entities/{entity_id}")
def get_entity(entity_id: str, principal: TenantDep, service: ServiceDep) -> EntityDetail:
    """The entity with its neighbours, relations and the memories that mention it."""
    return service.get_entity(principal.tenant_id, entity_id)


@router.get("/relations")
def list_relations(
    principal: TenantDep,
    service: ServiceDep,
    user_id: str | None = None,
    entity_id: str | None = None,
    type: str | None = None,
    as_of: Annotated[UtcDatetime | None, Query(description="Only relations valid then.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[RelationPublic]:
    return service.list_relations(
        principal.tenant_id,
        user_id=user_id,
        entity_id=entity_id,
        type_=type,
        as_of=as_of,
        limit=limit,
        cursor=cursor,
    )
