"""The entity graph in SQL (entities, relations, memory links) and its networkx view.

Persistence only: which entities and relations a text holds is decided in ``memsvc.graph``.
Every function takes the session keyword-only and never commits. The networkx graph is derived
from these tables and rebuilt from them whenever it is needed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import networkx as nx
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from stores.models import EntityRow, MemoryEntity, MemoryRow, RelationRow

__all__ = [
    "EntitySpec",
    "RelationQuery",
    "add_relations",
    "close_relations_of",
    "entities_by_pks",
    "entities_page",
    "entity_by_id",
    "entity_memories",
    "entity_pks_by_keys",
    "link_memory",
    "memories_sharing_entities",
    "partition_graph",
    "people_of",
    "relations_page",
    "upsert_entities",
]


@dataclass(frozen=True)
class EntitySpec:
    key: str  # normalised name: the identity inside a (tenant, user) graph
    name: str
    type: str
    # Other names for it, each a dict with "name" and its evidence ("rule", "memory_id").
    aliases: tuple[dict[str, str], ...] = ()
    firm: bool = False  # the type is certain (a statement's subject): it replaces a guessed one


def upsert_entities(
    tenant_id: str, user_id: str, specs: Iterable[EntitySpec], at: datetime, *, session: Session
) -> dict[str, EntityRow]:
    """The rows for ``specs`` by key, created when missing; counts one mention each.

    A firm person spec makes the entity a person (a person stays a person: nothing else
    changes a stored type); new aliases are appended with their evidence.
    """
    wanted = {s.key: s for s in specs}
    if not wanted:
        return {}
    stmt = select(EntityRow).where(
        EntityRow.tenant_id == tenant_id,
        EntityRow.user_id == user_id,
        EntityRow.key.in_(list(wanted)),
    )
    rows = {row.key: row for row in session.scalars(stmt)}
    for key, spec in wanted.items():
        row = rows.get(key)
        if row is None:
            row = EntityRow(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                user_id=user_id,
                key=key,
                name=spec.name,
                type=spec.type,
                mentions=0,
                aliases=[],
                created_at=at,
            )
            session.add(row)
            rows[key] = row
        if spec.firm and spec.type == "person" and row.type != "person":
            row.type = "person"
        known = {a.get("name") for a in row.aliases or []}
        fresh = [a for a in spec.aliases if a.get("name") not in known]
        if fresh:
            row.aliases = [*(row.aliases or []), *fresh]  # a new list: JSON columns see it
        row.mentions = (row.mentions or 0) + 1
        row.updated_at = at
    session.flush()
    return rows


def people_of(tenant_id: str, user_id: str, *, session: Session) -> dict[str, str]:
    """Key -> name of one user's person entities (for merging short names into them)."""
    stmt = select(EntityRow.key, EntityRow.name).where(
        EntityRow.tenant_id == tenant_id,
        EntityRow.user_id == user_id,
        EntityRow.type == "person",
    )
    return {key: name for key, name in session.execute(stmt)}


def link_memory(
    tenant_id: str, memory_pk: int, entity_roles: dict[int, str], *, session: Session
) -> None:
    """Record which entities a memory mentions (idempotent per memory and entity)."""
    existing = set(
        session.scalars(select(MemoryEntity.entity_pk).where(MemoryEntity.memory_pk == memory_pk))
    )
    session.add_all(
        MemoryEntity(memory_pk=memory_pk, entity_pk=pk, tenant_id=tenant_id, role=role)
        for pk, role in entity_roles.items()
        if pk not in existing
    )


def add_relations(rows: Sequence[RelationRow], *, session: Session) -> None:
    session.add_all(rows)


def close_relations_of(memory_pk: int, at: datetime, *, session: Session) -> int:
    """Close the validity of every open relation stated by ``memory_pk``."""
    result = session.execute(
        update(RelationRow)
        .where(RelationRow.memory_pk == memory_pk, RelationRow.valid_to.is_(None))
        .values(valid_to=at)
    )
    return int(result.rowcount or 0)


def memories_sharing_entities(
    tenant_id: str,
    entity_pks: Sequence[int],
    *,
    kinds: Sequence[str],
    limit: int,
    session: Session,
) -> list[tuple[MemoryRow, int]]:
    """Live memories of ``kinds`` linked to any of the entities, most shared entities first."""
    if not entity_pks:
        return []
    shared = func.count(MemoryEntity.entity_pk).label("shared")
    stmt = (
        select(MemoryRow, shared)
        .join(MemoryEntity, MemoryEntity.memory_pk == MemoryRow.pk)
        .where(
            MemoryEntity.tenant_id == tenant_id,
            MemoryEntity.entity_pk.in_(list(entity_pks)),
            MemoryRow.deleted_at.is_(None),
            MemoryRow.kind.in_(list(kinds)),
        )
        .group_by(MemoryRow.pk)
        .order_by(shared.desc(), MemoryRow.pk.desc())
        .limit(limit)
    )
    return [(row, int(n)) for row, n in session.execute(stmt)]


def entities_page(
    tenant_id: str,
    *,
    user_id: str | None,
    type_: str | None,
    name_prefix: str | None,
    limit: int,
    after_pk: int | None,
    session: Session,
) -> list[EntityRow]:
    stmt = select(EntityRow).where(EntityRow.tenant_id == tenant_id)
    if user_id is not None:
        stmt = stmt.where(EntityRow.user_id == user_id)
    if type_ is not None:
        stmt = stmt.where(EntityRow.type == type_)
    if name_prefix:
        stmt = stmt.where(EntityRow.key.startswith(name_prefix.lower(), autoescape=True))
    if after_pk is not None:
        stmt = stmt.where(EntityRow.pk > after_pk)
    return list(session.scalars(stmt.order_by(EntityRow.pk).limit(limit)))


def entities_by_pks(
    tenant_id: str, pks: Iterable[int], *, session: Session
) -> dict[int, EntityRow]:
    """The tenant's entities among ``pks``, by pk."""
    pks = list(pks)
    if not pks:
        return {}
    stmt = select(EntityRow).where(EntityRow.tenant_id == tenant_id, EntityRow.pk.in_(pks))
    return {row.pk: row for row in session.scalars(stmt)}


def entity_pks_by_keys(
    tenant_id: str, user_id: str | None, keys: Iterable[str], *, session: Session
) -> list[int]:
    """The pks of one user's entities named by these normalised keys."""
    keys = list(keys)
    if not keys:
        return []
    stmt = select(EntityRow.pk).where(
        EntityRow.tenant_id == tenant_id,
        EntityRow.user_id == (user_id or ""),
        EntityRow.key.in_(keys),
    )
    return list(session.scalars(stmt))


def entity_by_id(tenant_id: str, entity_id: str, *, session: Session) -> EntityRow | None:
    stmt = select(EntityRow).where(EntityRow.tenant_id == tenant_id, EntityRow.id == entity_id)
    return session.scalars(stmt).first()


def entity_memories(
    tenant_id: str, entity_pk: int, *, limit: int, session: Session
) -> list[MemoryRow]:
    """Live memories that mention the entity, newest first."""
    stmt = (
        select(MemoryRow)
        .join(MemoryEntity, MemoryEntity.memory_pk == MemoryRow.pk)
        .where(
            MemoryEntity.tenant_id == tenant_id,
            MemoryEntity.entity_pk == entity_pk,
            MemoryRow.deleted_at.is_(None),
        )
        .order_by(MemoryRow.pk.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class RelationQuery:
    tenant_id: str
    user_id: str | None = None
    entity_pk: int | None = None  # either end
    type: str | None = None
    as_of: datetime | None = None


def _relation_where(query: RelationQuery) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [RelationRow.tenant_id == query.tenant_id]
    if query.user_id is not None:
        clauses.append(RelationRow.user_id == query.user_id)
    if query.entity_pk is not None:
        clauses.append(
            or_(RelationRow.source_pk == query.entity_pk, RelationRow.target_pk == query.entity_pk)
        )
    if query.type is not None:
        clauses.append(RelationRow.type == query.type)
    if query.as_of is not None:
        clauses.append(or_(RelationRow.valid_from.is_(None), RelationRow.valid_from <= query.as_of))
        clauses.append(or_(RelationRow.valid_to.is_(None), RelationRow.valid_to > query.as_of))
    return clauses


def relations_page(
    query: RelationQuery, *, limit: int, after_pk: int | None, session: Session
) -> list[tuple[RelationRow, EntityRow, EntityRow]]:
    """Relations with both ends, in creation order."""
    source = EntityRow.__table__.alias("source")
    target = EntityRow.__table__.alias("target")
    stmt = select(RelationRow, source.c.pk, target.c.pk).where(
        and_(*_relation_where(query)),
        source.c.pk == RelationRow.source_pk,
        target.c.pk == RelationRow.target_pk,
    )
    if after_pk is not None:
        stmt = stmt.where(RelationRow.pk > after_pk)
    found = list(session.execute(stmt.order_by(RelationRow.pk).limit(limit)))
    ends = {
        row.pk: row
        for row in session.scalars(
            select(EntityRow).where(
                EntityRow.pk.in_({pk for _, s, t in found for pk in (s, t)} or {-1})
            )
        )
    }
    return [(rel, ends[s], ends[t]) for rel, s, t in found]


def partition_graph(
    tenant_id: str, user_id: str, *, as_of: datetime | None, session: Session
) -> tuple[nx.Graph, dict[int, list[int]]]:
    """The user's entity graph and, per entity pk, the live memories that mention it.

    Nodes are entity pks (``name`` and ``type`` attributes); an edge joins two entities related
    by a relation valid at ``as_of`` (all open ones when None) or mentioned by one memory.
    """
    graph: nx.Graph = nx.Graph()
    for pk, name, type_ in session.execute(
        select(EntityRow.pk, EntityRow.name, EntityRow.type).where(
            EntityRow.tenant_id == tenant_id, EntityRow.user_id == user_id
        )
    ):
        graph.add_node(pk, name=name, type=type_)
    rel_query = RelationQuery(tenant_id=tenant_id, user_id=user_id, as_of=as_of)
    stmt = select(RelationRow.source_pk, RelationRow.target_pk).where(
        and_(*_relation_where(rel_query))
    )
    if as_of is None:
        stmt = stmt.where(RelationRow.valid_to.is_(None))
    for source, target in session.execute(stmt):
        graph.add_edge(source, target)
    mentions: dict[int, list[int]] = {}
    by_memory: dict[int, list[int]] = {}
    link_stmt = (
        select(MemoryEntity.memory_pk, MemoryEntity.entity_pk)
        .join(EntityRow, EntityRow.pk == MemoryEntity.entity_pk)
        .join(MemoryRow, MemoryRow.pk == MemoryEntity.memory_pk)
        .where(
            EntityRow.tenant_id == tenant_id,
            EntityRow.user_id == user_id,
            MemoryRow.deleted_at.is_(None),
        )
    )
    for memory_pk, entity_pk in session.execute(link_stmt):
        mentions.setdefault(entity_pk, []).append(memory_pk)
        by_memory.setdefault(memory_pk, []).append(entity_pk)
    for entities in by_memory.values():
        for n, a in enumerate(entities):
            for b in entities[n + 1 :]:
                graph.add_edge(a, b)
    return graph, mentions
