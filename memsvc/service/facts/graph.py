"""Graph: entities, relations (with validity) and memory links for a batch's facts."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from memsvc.graph import FactGraph
from memsvc.graph.aliases import SHORT_NAME_RULE, short_name_targets
from memsvc.service.facts.merge import Outcome
from stores import graph as store
from stores.models import MemoryRow, RelationRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["link_graph"]


def _specs(
    session: Session, tenant_id: str, user_key: str, written: list[Outcome]
) -> tuple[dict[str, store.EntitySpec], dict[str, str]]:
    """The entities to upsert by key, and the keys merged into others ("mel" -> "melanie")."""
    specs: dict[str, store.EntitySpec] = {}
    aliases: dict[str, list[dict[str, str]]] = {}
    for o in written:
        assert o.row is not None
        for key, mention in o.graph.entities.items():
            firm = mention.role == "subject" and mention.type == "person"
            old = specs.get(key)
            if old is None or (firm and not old.firm):
                specs[key] = store.EntitySpec(key, mention.name, mention.type, firm=firm)
        for key, said in o.graph.aliases.items():
            aliases.setdefault(key, []).extend(
                {"name": n, "rule": "same role", "memory_id": o.row.id} for n in sorted(said)
            )
    people = {k: s.name for k, s in specs.items() if s.type == "person"}
    known = store.people_of(tenant_id, user_key, session=session) | people
    merged = short_name_targets(people, known)
    for short, full in merged.items():
        spec = specs.pop(short)
        evidence = next(o.row.id for o in written if o.row and short in o.graph.entities)
        aliases.setdefault(full, []).append(
            {"name": spec.name, "rule": SHORT_NAME_RULE, "memory_id": evidence}
        )
        if full not in specs:
            specs[full] = store.EntitySpec(full, known[full], "person")
    for key, found in aliases.items():
        if key in specs:
            specs[key] = replace(specs[key], aliases=tuple(found))
    return specs, merged


def link_graph(
    session: Session,
    scope: dict[str, Any],
    outcomes: list[Outcome],
    episodes: list[MemoryRow],
) -> dict[str, int]:
    """Upsert the entities each written fact mentions, link them, and add its relations.

    A relation takes its fact's validity, so an invalidated fact's relations are closed too.
    Episodes link to the entities of the facts extracted in them. Short names of known people
    are merged into them, the short name kept as an alias with the fact that used it.
    """
    tenant_id, user_key = scope["tenant_id"], scope["user_id"] or ""
    written = [o for o in outcomes if o.row is not None]
    specs, merged = _specs(session, tenant_id, user_key, written)
    entities = store.upsert_entities(tenant_id, user_key, specs.values(), utcnow(), session=session)
    relations = 0
    by_episode: dict[str, dict[int, str]] = {}
    for outcome in written:
        row = outcome.row
        assert row is not None
        roles: dict[int, str] = {}
        for k, m in outcome.graph.entities.items():
            roles.setdefault(entities[merged.get(k, k)].pk, m.role)
        store.link_memory(tenant_id, row.pk, roles, session=session)
        if row.episode_id:
            by_episode.setdefault(row.episode_id, {}).update(dict.fromkeys(roles, "mention"))
        if outcome.op in ("ADD", "UPDATE"):
            relations += _relations(session, tenant_id, user_key, outcome.graph, entities, row,
                                    merged)  # fmt: skip
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
    merged: dict[str, str],
) -> int:
    rows = [
        RelationRow(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            user_id=user_key,
            source_pk=entities[merged.get(r.source, r.source)].pk,
            target_pk=entities[merged.get(r.target, r.target)].pk,
            type=r.type,
            memory_pk=row.pk,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            created_at=utcnow(),
        )
        for r in graph.relations
        if merged.get(r.source, r.source) != merged.get(r.target, r.target)
    ]
    store.add_relations(rows, session=session)
    return len(rows)
