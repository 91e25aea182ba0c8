"""Boolean filter expressions (``where``): AND / OR / NOT over comparisons on memory fields.

The grammar is mem0's v2/v3 filter language, so mem0 filters pass through unchanged::

    {"AND": [{"user_id": "alice"}, {"metadata.topic": {"in": ["food", "travel"]}}]}
    {"OR": [{"kind": "preference"}, {"created_at": {"gte": "2026-01-01T00:00:00Z"}}]}
    {"NOT": {"metadata": {"status": "done"}}}
    {"agent_id": "*"}                       # the field is set (any value)

An object with several keys is the AND of its members. A field maps to a value (equality),
to ``"*"`` (set, any value) or to an object of operators (all must hold). Metadata keys are
written ``metadata.<key>`` or nested under ``metadata``. Values are typed: a number matches
numbers only, a string strings only (as in the scalar ``metadata`` filter). ``ne`` and ``nin``
match a field that is missing; every other comparison needs the field present. Case folding
in ``icontains`` is ASCII-only, the same on SQLite and PostgreSQL.

:func:`parse_where` checks an expression against the limits below and returns a typed tree
(:class:`Leaf`, :class:`All`, :class:`Any_`, :class:`Not`) that the service hands the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_WHERE_CLAUSES",
    "MAX_WHERE_DEPTH",
    "MAX_WHERE_VALUES",
    "OPERATORS",
    "All",
    "Any_",
    "Condition",
    "Leaf",
    "Not",
    "WhereError",
    "parse_where",
]

#: AND/OR/NOT nesting levels, comparisons in all, and values in one ``in``/``nin`` list.
MAX_WHERE_DEPTH = 6
MAX_WHERE_CLAUSES = 64
MAX_WHERE_VALUES = 100

OPERATORS = (
    "eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "contains", "icontains", "exists",
)  # fmt: skip
_SCOPES = ("user_id", "agent_id", "session_id")
_TIMES = ("created_at", "updated_at", "occurred_at", "valid_from", "valid_to")
_KINDS = ("fact", "preference", "event", "episode", "plan", "note", "message")
_TEXT_OPS = {"eq", "ne", "in", "nin", "contains", "icontains", "exists"}
_ORDER_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "exists"}
# field -> (value type, operators it takes)
_FIELDS: dict[str, tuple[str, set[str]]] = {
    "id": ("str", {"eq", "ne", "in", "nin"}),
    **{name: ("str", _TEXT_OPS) for name in _SCOPES},
    "kind": ("kind", {"eq", "ne", "in", "nin"}),
    "text": ("str", {"eq", "ne", "contains", "icontains"}),
    **{name: ("time", _ORDER_OPS) for name in _TIMES},
    "importance": ("number", _ORDER_OPS | {"in", "nin"}),
}
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_BOOLEANS = ("AND", "OR", "NOT")


class WhereError(ValueError):
    """A filter expression that cannot be evaluated; ``path`` says where, e.g. ``OR[1].kind``."""

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}" if path else problem)


@dataclass(frozen=True)
class Leaf:
    """``field op value``; ``field`` is a column name or ``metadata`` (then ``key`` is set)."""

    field: str
    op: str
    value: Any = None
    key: str | None = None


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Leaf | All | Any_ | Not


class _Parser:
    def __init__(self) -> None:
        self.leaves = 0

    def expr(self, value: Any, path: str, depth: int) -> Condition:
        if depth > MAX_WHERE_DEPTH:
            raise WhereError(path, f"nests deeper than {MAX_WHERE_DEPTH} levels of AND/OR/NOT")
        if not isinstance(value, dict) or not value:
            raise WhereError(path, "must be a non-empty JSON object")
        parts = [self.member(k, v, _join(path, k), depth) for k, v in value.items()]
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def member(self, key: Any, value: Any, path: str, depth: int) -> Condition:
        if key in ("AND", "OR"):
            if not isinstance(value, list) or not value:
                raise WhereError(path, f"{key} takes a non-empty list of conditions")
            items = tuple(self.expr(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
            return All(items) if key == "AND" else Any_(items)
        if key == "NOT":
            if isinstance(value, list):  # mem0 writes NOT: [cond, ...]: none of them holds
                if not value:
                    raise WhereError(path, "NOT takes a condition or a non-empty list of them")
                items = tuple(self.expr(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
                return Not(items[0] if len(items) == 1 else Any_(items))
            return Not(self.expr(value, path, depth + 1))
        if key == "metadata" and isinstance(value, dict):
            if not value:
                raise WhereError(path, "must name at least one metadata key")
            parts = [self.field(f"metadata.{k}", v, _join(path, k)) for k, v in value.items()]
            return parts[0] if len(parts) == 1 else All(tuple(parts))
        return self.field(key, value, path)

    def field(self, name: Any, value: Any, path: str) -> Condition:
        key = None
        if isinstance(name, str) and name.startswith("metadata."):
            key = name.removeprefix("metadata.")
            if not _METADATA_KEY.match(key):
                raise WhereError(
                    path, f"metadata key {key!r} must be 1-64 characters of letters, digits, _.:-"
                )
            kind, ops = "json", set(OPERATORS)
        elif name in _FIELDS:
            kind, ops = _FIELDS[name]
        else:
            known = ", ".join([*_FIELDS, "metadata.<key>", *_BOOLEANS])
            raise WhereError(path, f"unknown field {name!r}; known: {known}")
        column = "metadata" if key is not None else name
        if value == "*":
            return self.leaf(Leaf(column, "exists", True, key), path)
        if not isinstance(value, dict):
            return self.leaf(Leaf(column, "eq", _value(kind, "eq", value, path), key), path)
        if not value:
            raise WhereError(path, "an operator object needs at least one operator")
        parts = []
        for op, operand in value.items():
            where = _join(path, op)
            if op not in OPERATORS:
                raise WhereError(where, f"unknown operator {op!r}; known: {', '.join(OPERATORS)}")
            if op not in ops:
                raise WhereError(where, f"{name} does not take {op!r}; it takes {_sorted(ops)}")
            parts.append(self.leaf(Leaf(column, op, _value(kind, op, operand, where), key), path))
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def leaf(self, leaf: Leaf, path: str) -> Leaf:
        self.leaves += 1
        if self.leaves > MAX_WHERE_CLAUSES:
            raise WhereError(path, f"more than {MAX_WHERE_CLAUSES} comparisons in one filter")
        return leaf


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _sorted(ops: set[str]) -> str:
    return ", ".join(op for op in OPERATORS if op in ops)


def _value(kind: str, op: str, value: Any, path: str) -> Any:
    """The operand of ``op`` on a field of ``kind``, checked and typed."""
    if op == "exists":
        if not isinstance(value, bool):
            raise WhereError(path, "exists takes true or false")
        return value
    if op in ("in", "nin"):
        if not isinstance(value, list) or not value:
            raise WhereError(path, f"{op} takes a non-empty list")
        if len(value) > MAX_WHERE_VALUES:
            raise WhereError(
                path, f"{op} lists {len(value)} values; the limit is {MAX_WHERE_VALUES}"
            )
        return tuple(_scalar(kind, "eq", v, f"{path}[{i}]") for i, v in enumerate(value))
    return _scalar(kind, op, value, path)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalar(kind: str, op: str, value: Any, path: str) -> Any:
    if op in ("contains", "icontains"):
        if not isinstance(value, str):
            raise WhereError(path, f"{op} takes a string")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise WhereError(path, "takes a string")
        return value
    if kind == "kind":
        if value not in _KINDS:
            raise WhereError(path, f"kind must be one of {', '.join(_KINDS)}")
        return value
    if kind == "number":
        if not _is_number(value):
            raise WhereError(path, "takes a number")
        return float(value)
    if kind == "time":
        return _time(value, path)
    # metadata: a JSON scalar; order comparisons need a number or a string
    if op in ("gt", "gte", "lt", "lte"):
        if not (_is_number(value) or isinstance(value, str)):
            raise WhereError(path, f"{op} takes a number or a string")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise WhereError(path, "takes a string, number, boolean or null")
    return value


def _time(value: Any, path: str) -> datetime:
    if not isinstance(value, str):
        raise WhereError(path, "takes an ISO 8601 timestamp string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WhereError(path, f"{value!r} is not an ISO 8601 timestamp") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise WhereError(path, "timestamp out of range") from exc


def parse_where(value: Any) -> Condition:
    """The typed tree of a filter expression; :class:`WhereError` names what is wrong."""
    return _Parser().expr(value, "", 1)
