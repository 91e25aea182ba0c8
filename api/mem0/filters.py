"""mem0 filters -> memsvc filters: scope ids where they pick a partition, the rest as ``where``.

mem0 writes ``{"AND": [{"user_id": "alice"}, {"created_at": {"gte": ...}}]}``. An equality on
``user_id``/``agent_id``/``run_id`` that must hold for every result (a top-level member or an
``AND`` member) becomes the native scope field, so a plain mem0 search reads the same index
partition as ``/v1/search`` with ``filters.user_id``; everything else passes through as the
native ``where`` expression (same grammar), with mem0's names renamed.
"""

from __future__ import annotations

from typing import Any

from memsvc.errors import InvalidRequestError

__all__ = ["RENAMES", "split_filters"]

#: mem0 field -> memsvc field.
RENAMES = {
    "run_id": "session_id",
    "app_id": "metadata.app_id",
    "keywords": "text",
    "memory_ids": "id",
}
_SCOPES = {"user_id": "user_id", "agent_id": "agent_id", "run_id": "session_id"}
_UNSUPPORTED = {"categories": "memsvc has no categories; use metadata.<key> instead"}


def _rename(value: Any) -> Any:
    """The expression with mem0's field names replaced by memsvc's (AND/OR/NOT recursed)."""
    if isinstance(value, list):
        return [_rename(v) for v in value]
    if not isinstance(value, dict):
        return value
    renamed: dict[str, Any] = {}
    for key, item in value.items():
        if key in _UNSUPPORTED:
            raise InvalidRequestError(
                f"filters.{key} is not supported: {_UNSUPPORTED[key]}", field=f"filters.{key}"
            )
        if key in ("AND", "OR", "NOT"):
            renamed[key] = _rename(item)
        else:
            renamed[RENAMES.get(key, key)] = item
    return renamed


def _conjuncts(filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The members that must all hold: top-level keys, and AND lists flattened."""
    parts: list[dict[str, Any]] = []
    for key, value in filters.items():
        if key == "AND" and isinstance(value, list) and all(isinstance(v, dict) for v in value):
            for member in value:
                parts.extend(_conjuncts(member))
        else:
            parts.append({key: value})
    return parts


def split_filters(
    filters: dict[str, Any] | None, **scope: str | None
) -> tuple[dict[str, str], dict[str, Any] | None]:
    """``(scope, where)``: native scope fields (from ``filters`` and the top-level ``scope``
    ids mem0 also accepts) and the remaining expression (None when nothing remains)."""
    ids = {_SCOPES[k]: v for k, v in scope.items() if v is not None}
    if filters is None:
        return ids, None
    if not isinstance(filters, dict):
        raise InvalidRequestError("filters must be a JSON object", field="filters")
    rest = []
    for part in _conjuncts(filters):
        ((key, value),) = part.items()
        native = _SCOPES.get(key)
        if native and isinstance(value, str) and value != "*" and ids.get(native, value) == value:
            ids[native] = value
        else:
            rest.append(part)
    if not rest:
        return ids, None
    where = _rename(rest[0] if len(rest) == 1 else {"AND": rest})
    return ids, where
