"""SQL of export and import: a tenant's (or one user's) rows, page by page, as JSON-able dicts,
and the inserts that put them back with their ids (docs/export-format.md).

A row becomes a dict of its columns by name, without the tenant and without local surrogate
keys (``pk``): bytes as base64, timestamps as ISO 8601. Rows that point at another row by its
pk (relations, memory links, KV prefixes) carry that row's public id instead. Reading pages by
key keeps memory flat whatever the tenant's size.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, Table, insert, select
from sqlalchemy.orm import Session, aliased

from stores.models import (
    EntityRow,
    EventRow,
    JobRow,
    KVCacheRow,
    KVPrefixRow,
    MemoryEntity,
    MemoryHistory,
    MemoryRow,
    RelationRow,
    SessionRow,
    UTCDateTime,
)

__all__ = [
    "TABLES",
    "decode_row",
    "encode_row",
    "existing",
    "insert_rows",
    "pks_by_ids",
    "read_table",
]

_PAGE = 1000

#: The exported tables: member name -> (model, columns left out).
TABLES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "sessions": (SessionRow, ("tenant_id",)),
    "memories": (MemoryRow, ("tenant_id", "pk", "rev")),
    "memory_history": (MemoryHistory, ("tenant_id", "pk")),
    "events": (EventRow, ("tenant_id", "pk")),
    "entities": (EntityRow, ("tenant_id", "pk")),
    "relations": (RelationRow, ("tenant_id", "pk", "source_pk", "target_pk", "memory_pk")),
    "memory_entities": (MemoryEntity, ("tenant_id", "memory_pk", "entity_pk")),
    "jobs": (JobRow, ("tenant_id",)),
    "kv_caches": (KVCacheRow, ("tenant_id",)),
    "kv_prefixes": (KVPrefixRow, ("tenant_id", "pk")),
}


def _table(model: Any) -> Table:
    return model.__table__


def encode_row(model: Any, row: Any, skip: Sequence[str]) -> dict[str, Any]:
    """A row's columns as JSON-able values (bytes: base64; timestamps: ISO 8601)."""
    out: dict[str, Any] = {}
    mapping = row._mapping if hasattr(row, "_mapping") else row
    for column in _table(model).columns:
        if column.name in skip:
            continue
        value = mapping[column]
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[column.name] = value
    return out


def decode_row(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`encode_row` for the columns present in ``data``."""
    out: dict[str, Any] = {}
    for column in _table(model).columns:
        if column.name not in data:
            continue
        value = data[column.name]
        if value is not None and isinstance(column.type, LargeBinary):
            value = base64.b64decode(value)
        elif value is not None and isinstance(column.type, UTCDateTime):
            value = datetime.fromisoformat(value)
        out[column.key] = value
    return out


def _scope(model: Any, tenant_id: str, user_id: str | None, sessions: Sequence[str]) -> list:
    where = [model.tenant_id == tenant_id]
    if user_id is None:
        return where
    if model in (MemoryRow, EventRow, SessionRow, EntityRow, RelationRow):
        where.append(model.user_id == user_id)
    elif model is MemoryHistory:
        ids = select(MemoryRow.id).where(
            MemoryRow.tenant_id == tenant_id, MemoryRow.user_id == user_id
        )
        where.append(MemoryHistory.memory_id.in_(ids))
    elif model is MemoryEntity:
        pks = select(MemoryRow.pk).where(
            MemoryRow.tenant_id == tenant_id, MemoryRow.user_id == user_id
        )
        where.append(MemoryEntity.memory_pk.in_(pks))
    elif model is KVCacheRow:
        where.append(KVCacheRow.session_id.in_(list(sessions)))
    elif model is KVPrefixRow:
        kv = select(KVCacheRow.id).where(
            KVCacheRow.tenant_id == tenant_id, KVCacheRow.session_id.in_(list(sessions))
        )
        where.append(KVPrefixRow.kv_id.in_(kv))
    return where


def read_table(
    name: str,
    tenant_id: str,
    *,
    user_id: str | None = None,
    sessions: Sequence[str] = (),
    session: Session,
) -> Iterator[dict[str, Any]]:
    """Every row of the table in the scope (a tenant, or one user of it), encoded, page by
    page in key order (memory stays flat). Jobs of a user are those naming the user or one of
    its sessions in their scope."""
    model, skip = TABLES[name]
    table = _table(model)
    keys = list(table.primary_key.columns)
    where = _scope(model, tenant_id, user_id, sessions)
    columns: list[Any] = list(table.columns)
    joins: list[tuple[Any, Any]] = []
    if model is RelationRow:
        source, target = aliased(EntityRow), aliased(EntityRow)
        columns += [
            source.id.label("source_id"),
            target.id.label("target_id"),
            select(MemoryRow.id).where(MemoryRow.pk == RelationRow.memory_pk)
            .scalar_subquery().label("memory_id"),
        ]  # fmt: skip
        joins = [
            (source, source.pk == RelationRow.source_pk),
            (target, target.pk == RelationRow.target_pk),
        ]
    elif model is MemoryEntity:
        columns += [
            select(MemoryRow.id).where(MemoryRow.pk == MemoryEntity.memory_pk)
            .scalar_subquery().label("memory_id"),
            select(EntityRow.id).where(EntityRow.pk == MemoryEntity.entity_pk)
            .scalar_subquery().label("entity_id"),
        ]  # fmt: skip
    after: tuple | None = None
    session_set = set(sessions)
    while True:
        stmt = select(*columns)
        for alias, on in joins:
            stmt = stmt.join(alias, on)
        stmt = stmt.where(*where)
        if after is not None:
            from sqlalchemy import tuple_

            stmt = stmt.where(tuple_(*keys) > tuple_(*after))
        rows = session.execute(stmt.order_by(*keys).limit(_PAGE)).all()
        for row in rows:
            if model is JobRow and user_id is not None:
                scope = row._mapping["scope"] or {}
                if scope.get("user_id") != user_id and scope.get("session_id") not in session_set:
                    continue
            data = encode_row(model, row, skip)
            for extra in ("source_id", "target_id", "memory_id", "entity_id"):
                if extra in row._mapping and extra not in data:
                    data[extra] = row._mapping[extra]
            yield data
        if len(rows) < _PAGE:
            return
        after = tuple(rows[-1]._mapping[k] for k in keys)


def user_sessions(tenant_id: str, user_id: str, *, session: Session) -> list[str]:
    """The ids of the user's sessions (what scopes its KV caches and jobs)."""
    stmt = select(SessionRow.id).where(
        SessionRow.tenant_id == tenant_id, SessionRow.user_id == user_id
    )
    return list(session.scalars(stmt))


def existing(
    name: str, tenant_id: str, ids: Sequence[str], *, session: Session
) -> dict[str, dict[str, Any] | None]:
    """The rows among ``ids`` already in the target, encoded like an export (to compare); an
    id another tenant holds (ids are unique across tenants) maps to ``None``, its content
    unread."""
    model, skip = TABLES[name]
    if not ids:
        return {}
    where = [model.id.in_(list(ids))]
    if model is SessionRow:  # a session's id is unique within its tenant only
        where.append(model.tenant_id == tenant_id)
    found: dict[str, dict[str, Any] | None] = {}
    for row in session.execute(select(*_table(model).columns).where(*where)):
        mapping = row._mapping
        if mapping["tenant_id"] != tenant_id:
            found[mapping["id"]] = None
            continue
        data = encode_row(model, row, skip)
        found[data["id"]] = data
    return found


def pks_by_ids(model: Any, tenant_id: str, ids: Sequence[str], *, session: Session) -> dict:
    """id -> pk of the tenant's memories or entities among ``ids``."""
    ids = [i for i in set(ids) if i]
    if not ids:
        return {}
    stmt = select(model.id, model.pk).where(model.tenant_id == tenant_id, model.id.in_(ids))
    return {row_id: pk for row_id, pk in session.execute(stmt)}


def entity_keys_taken(
    tenant_id: str, keys: Sequence[tuple[str, str]], *, session: Session
) -> dict[tuple[str, str], str]:
    """(user_id, key) -> id of the tenant's entities among ``keys`` (a unique pair)."""
    found: dict[tuple[str, str], str] = {}
    for user_id in {u for u, _ in keys}:
        names = [k for u, k in keys if u == user_id]
        stmt = select(EntityRow.key, EntityRow.id).where(
            EntityRow.tenant_id == tenant_id,
            EntityRow.user_id == user_id,
            EntityRow.key.in_(names),
        )
        for key, entity_id in session.execute(stmt):
            found[(user_id, key)] = entity_id
    return found


def insert_rows(model: Any, rows: Sequence[dict[str, Any]], *, session: Session) -> None:
    """Insert decoded rows (column names as keys)."""
    if rows:
        session.execute(insert(_table(model)), list(rows))


__all__ += ["entity_keys_taken", "user_sessions"]
