"""The entity graph as a picture, and one entity: its facts, relations and their changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.ui.app import UiContext, UiDep, render
from api.ui.graph_picture import layout
from memsvc.schemas import RelationPublic

__all__ = ["router"]

router = APIRouter()

ENTITY_LIMIT = 200  # one page of the listing: a bigger graph is no longer readable
RELATION_LIMIT = 1000
MAX_SLOTS = 20  # relation timelines on one entity's page


@router.get("/graph")
def graph(ui: UiDep, user_id: Annotated[str, Query(max_length=200)] = "") -> Response:
    """A user's (or the tenant's) entities and relations, drawn; each node links to its page."""
    user = user_id or None
    entities = ui.service.graph.list_entities(ui.tenant_id, user_id=user, limit=ENTITY_LIMIT).data
    relations = ui.service.graph.list_relations(
        ui.tenant_id, user_id=user, limit=RELATION_LIMIT
    ).data
    picture = layout(entities, relations, ui.now)
    return render(
        ui, ui.request, "graph.html", user_id=user_id, picture=picture, entities=entities,
        relations=relations,
    )  # fmt: skip


def _changes(ui: UiContext, entity_id: str) -> dict[tuple[str, str], list[RelationPublic]]:
    """Per relation of the entity, every value its (source, type) ever had, in the order they
    became valid: for Oslo, "Ann lives_in" reads Oslo (2024 → 2025), then Bergen (2025 →)."""
    graph = ui.service.graph
    own = graph.list_relations(ui.tenant_id, entity_id=entity_id, limit=RELATION_LIMIT).data
    slots = dict.fromkeys((r.source.id, r.source.name, r.type) for r in own)
    changes = {}
    for source_id, source_name, type_ in list(slots)[:MAX_SLOTS]:
        found = graph.list_relations(
            ui.tenant_id, entity_id=source_id, type_=type_, limit=RELATION_LIMIT
        ).data
        found = [r for r in found if r.source.id == source_id]
        changes[(source_name, type_)] = sorted(
            found, key=lambda r: (r.valid_from or r.created_at, r.created_at)
        )
    return dict(sorted(changes.items()))


@router.get("/graph/entities/{entity_id}")
def entity(ui: UiDep, entity_id: str) -> Response:
    """One entity: the facts that mention it with their validity, its neighbours, and the
    timeline of each of its relations' changes."""
    detail = ui.service.graph.get_entity(ui.tenant_id, entity_id)
    return render(ui, ui.request, "entity.html", entity=detail, changes=_changes(ui, entity_id))
