"""Graph: entities, relations (with validity) and memory links for a batch's facts."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from memsvc.graph import FactGraph
from memsvc.service.facts.merge import Outcome
from stores import graph as store
from stores.models import MemoryRow, RelationRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["link_graph"]


def link_graph(
    session: Session,
    scope: dict[str, Any],
    outcomes: list[Outcome],
    episodes: list[MemoryRow],
) -> dict[str, int]:
    """Upsert the entities each written fact mentions, link them, and add its relations.

    A relation takes its fact's validity, so an invalidated fact's relations are closed too.
    Episodes link to the entities of the facts extracted in them.
    """
    tenant_id, user_key = scope["tenant_id"], scope["user_id"] or ""
    written = [o for o in outcomes if o.row is not None]
    specs = {
        key: store.EntitySpec(key, mention.name, mention.type)
        for o in written
        for key, mention in o.graph.entities.items()
    }
    entities = store.upsert_entities(tenant_id, user_key, specs.values(), utcnow(), session=session)
    relations = 0
    by_episode: dict[str, dict[int, str]] = {}
    for outcome in written:
        row = outcome.row
        assert row is not None
        roles = {entities[k].pk: m.role for k, m in outcome.graph.entities.items()}
        store.link_memory(tenant_id, row.pk, roles, session=session)
        if row.episode_id:
            by_episode.setdefault(row.episode_id, {}).update(dict.fromkeys(roles, "mention"))
        if outcome.op in ("ADD", "UPDATE"):
            relations += _relations(session, tenant_id, user_key, outcome.graph, entities, row)
    for episode in episodes:
        if by_episode.get(episode.id):
            store.link_memory(tenant_id, episode.pk, by_episode[episode.id], session=session)
    return {"entities": len(entities), "relations": relations}


def _relations(
    session: Session,
    tenant_id: str,
    user_key: str,
    graph: FactGraph,
    entities: dict[str, Any],
    row: MemoryRow,
) -> int:
    rows = [
        RelationRow(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            user_id=user_key,
            source_pk=entities[r.source].pk,
            target_pk=entities[r.target].pk,
            type=r.type,
            memory_pk=row.pk,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            created_at=utcnow(),
        )
        for r in graph.relations
    ]
    store.add_relations(rows, session=session)
    return len(rows)
