"""The entity graph, read side: entities, one entity with neighbours and facts, relations."""

from __future__ import annotations

from datetime import datetime

from memsvc.errors import InvalidRequestError, NotFoundError
from memsvc.schemas import (
    EntityAlias,
    EntityDetail,
    EntityPublic,
    EntityRef,
    Neighbour,
    Page,
    RelationPublic,
)
from memsvc.service.deps import ServiceDeps
from memsvc.service.memories import to_public
from memsvc.service.validation import decode_cursor, encode_cursor
from stores import graph as store
from stores import memories as memory_store
from stores.models import EntityRow, RelationRow

__all__ = ["get_entity", "list_entities", "list_relations"]

_NEIGHBOUR_LIMIT = 50
_FACT_LIMIT = 50


def _entity(row: EntityRow) -> EntityPublic:
    return EntityPublic(
        id=row.id,
        name=row.name,
        type=row.type,
        user_id=row.user_id or None,
        mentions=row.mentions,
        aliases=[EntityAlias.model_validate(a) for a in row.aliases or []],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _ref(row: EntityRow) -> EntityRef:
    return EntityRef(id=row.id, name=row.name, type=row.type)


def _relation(
    rel: RelationRow, source: EntityRow, target: EntityRow, memory_id: str | None
) -> RelationPublic:
    return RelationPublic(
        id=rel.id,
        type=rel.type,
        source=_ref(source),
        target=_ref(target),
        memory_id=memory_id,
        valid_from=rel.valid_from,
        valid_to=rel.valid_to,
        created_at=rel.created_at,
    )


def _page_args(limit: int, cursor: str | None) -> int | None:
    if not 1 <= limit <= 1000:
        raise InvalidRequestError("limit must be between 1 and 1000", field="limit")
    if not cursor:
        return None
    return decode_cursor(cursor, {"pk": int})["pk"]


def list_entities(
    deps: ServiceDeps,
    tenant_id: str,
    *,
    user_id: str | None = None,
    type_: str | None = None,
    name: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[EntityPublic]:
    """Entities in creation order, by user, type or name prefix."""
    after = _page_args(limit, cursor)
    with deps.sessions() as session:
        rows = store.entities_page(
            tenant_id,
            user_id=user_id,
            type_=type_,
            name_prefix=name,
            limit=limit + 1,
            after_pk=after,
            session=session,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"pk": rows[-1].pk}) if more else None
    return Page(data=[_entity(r) for r in rows], count=len(rows), next_cursor=next_cursor)


def get_entity(deps: ServiceDeps, tenant_id: str, entity_id: str) -> EntityDetail:
    """An entity with its relations (open and closed), neighbours and the facts about it."""
    with deps.sessions() as session:
        row = store.entity_by_id(tenant_id, entity_id, session=session)
        if row is None:
            raise NotFoundError(f"entity {entity_id} not found", field="entity_id")
        query = store.RelationQuery(tenant_id=tenant_id, entity_pk=row.pk)
        found = store.relations_page(query, limit=_NEIGHBOUR_LIMIT, after_pk=None, session=session)
        memory_pks = {r.memory_pk for r, _, _ in found if r.memory_pk}
        memory_ids = memory_store.ids_by_pks(tenant_id, memory_pks, session=session)
        facts = store.entity_memories(tenant_id, row.pk, limit=_FACT_LIMIT, session=session)
        graph, _ = store.partition_graph(tenant_id, row.user_id, as_of=None, session=session)
        co_mentioned = set(graph.neighbors(row.pk)) if row.pk in graph else set()
        names = store.entities_by_pks(tenant_id, co_mentioned, session=session)
    relations = [_relation(r, s, t, memory_ids.get(r.memory_pk or -1)) for r, s, t in found]
    neighbours: dict[int, Neighbour] = {}
    for rel, source, target in found:
        other = target if source.pk == row.pk else source
        neighbours.setdefault(other.pk, Neighbour(entity=_ref(other), relations=[]))
        neighbours[other.pk].relations.append(rel.type)
    for pk, entity in names.items():
        neighbours.setdefault(pk, Neighbour(entity=_ref(entity), relations=["mentioned_with"]))
    return EntityDetail(
        **_entity(row).model_dump(),
        neighbours=list(neighbours.values())[:_NEIGHBOUR_LIMIT],
        relations=relations,
        facts=[to_public(m) for m in facts],
    )


def list_relations(
    deps: ServiceDeps,
    tenant_id: str,
    *,
    user_id: str | None = None,
    entity_id: str | None = None,
    type_: str | None = None,
    as_of: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[RelationPublic]:
    """Relations in creation order; ``as_of`` keeps those valid then."""
    after = _page_args(limit, cursor)
    with deps.sessions() as session:
        entity_pk = None
        if entity_id is not None:
            entity = store.entity_by_id(tenant_id, entity_id, session=session)
            if entity is None:
                raise NotFoundError(f"entity {entity_id} not found", field="entity_id")
            entity_pk = entity.pk
        query = store.RelationQuery(
            tenant_id=tenant_id, user_id=user_id, entity_pk=entity_pk, type=type_, as_of=as_of
        )
        found = store.relations_page(query, limit=limit + 1, after_pk=after, session=session)
        memory_pks = {r.memory_pk for r, _, _ in found if r.memory_pk}
        memory_ids = memory_store.ids_by_pks(tenant_id, memory_pks, session=session)
    more = len(found) > limit
    found = found[:limit]
    next_cursor = encode_cursor({"pk": found[-1][0].pk}) if more else None
    data = [_relation(r, s, t, memory_ids.get(r.memory_pk or -1)) for r, s, t in found]
    return Page(data=data, count=len(data), next_cursor=next_cursor)
