"""Boolean filter trees as SQL, with the same answers on SQLite and PostgreSQL.

The tree (:class:`Cmp`, :class:`AllOf`, :class:`AnyOf`, :class:`NoneOf`) is built by the service
from a checked ``where`` expression. Every comparison compiles to a clause that is never NULL
(a missing field is false for ``eq``/``gt``/``contains``..., true for ``ne``/``nin``), so
``NOT`` is plain two-valued negation on both backends.

Metadata values are typed as in :mod:`stores.json_match`: a number operand only matches stored
numbers, a string only strings, and nothing is ever cast (a ``CASE`` tests the JSON type before
comparing, since PostgreSQL does not promise to evaluate ``AND`` left to right). Strings order
byte-wise (``COLLATE "C"`` on PostgreSQL, SQLite's BINARY); ``icontains`` folds ASCII only,
because SQLite's ``lower()`` does.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    String,
    and_,
    bindparam,
    false,
    func,
    not_,
    or_,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from stores.json_match import json_key_equals
from stores.models import MemoryRow

__all__ = ["AllOf", "AnyOf", "Cmp", "FilterTree", "NoneOf", "filter_clause"]


@dataclass(frozen=True)
class Cmp:
    """``field op value``; ``field`` is a memory column, or ``metadata`` with ``key``."""

    field: str
    op: str
    value: Any = None
    key: str | None = None


@dataclass(frozen=True)
class AllOf:
    items: tuple[FilterTree, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[FilterTree, ...]


@dataclass(frozen=True)
class NoneOf:
    """NOT of one condition."""

    item: FilterTree


FilterTree = Cmp | AllOf | AnyOf | NoneOf

_COLUMNS = {
    name: getattr(MemoryRow, name)
    for name in (
        "id", "user_id", "agent_id", "session_id", "kind", "text", "importance",
        "created_at", "updated_at", "occurred_at", "valid_from", "valid_to",
    )
}  # fmt: skip
_ORDER = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_COMPARE = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _Position(FunctionElement[Any]):
    """1-based position of a substring, 0 when absent (instr / strpos)."""

    name = "position_of"
    inherit_cache = True


@compiles(_Position, "sqlite")
def _position_sqlite(element: _Position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_Position, "postgresql")
def _position_pg(element: _Position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


class _AsciiLower(FunctionElement[Any]):
    """ASCII-only lower case (SQLite's ``lower()``; ``translate`` on PostgreSQL, whose
    ``lower()`` would also fold non-ASCII letters)."""

    name = "ascii_lower"
    inherit_cache = True
    type = String()


@compiles(_AsciiLower, "sqlite")
def _lower_sqlite(element: _AsciiLower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(_AsciiLower, "postgresql")
def _lower_pg(element: _AsciiLower, compiler: SQLCompiler, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"translate({arg}, '{_UPPER}', '{_UPPER.lower()}')"


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


class _JsonTest(FunctionElement[bool]):
    """A test of ``doc[key]``. Arguments: the JSON column, the key, the SQLite path, the
    operand (SQLite and PostgreSQL text), the operand as JSON text (PostgreSQL jsonb)."""

    type = Boolean()
    inherit_cache = True
    op = ""  # exists, contains, icontains, gt, gte, lt, lte
    json_kind = ""  # number or string: what the stored value must be


def _json_test(op: str, json_kind: str) -> type[_JsonTest]:
    return type(
        f"_Json_{op}_{json_kind}",
        (_JsonTest,),
        {"op": op, "json_kind": json_kind, "name": f"json_{op}", "inherit_cache": True},
    )


_JSON_TESTS = {
    (op, kind): _json_test(op, kind)
    for op in ("exists", "contains", "icontains", "gt", "gte", "lt", "lte")
    for kind in ("number", "string")
}


@compiles(_JsonTest, "sqlite")
def _json_sqlite(element: _JsonTest, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, path, value, _ = element.clauses

    def sql(clause: Any) -> str:  # rendered at each use: SQLite binds are positional
        return compiler.process(clause, **kw)

    json_type = f"json_type({sql(column)}, {sql(path)})"
    extracted = f"json_extract({sql(column)}, {sql(path)})"
    if element.op == "exists":
        return f"coalesce({json_type} <> 'null', 0)"
    if element.op in ("contains", "icontains"):
        target = extracted if element.op == "contains" else f"lower({extracted})"
        return f"(CASE WHEN {json_type} = 'text' THEN instr({target}, {sql(value)}) > 0 ELSE 0 END)"
    types = "'integer', 'real'" if element.json_kind == "number" else "'text'"
    compare = f"{extracted} {_ORDER[element.op]} {sql(value)}"
    return f"(CASE WHEN {json_type} IN ({types}) THEN {compare} ELSE 0 END)"


@compiles(_JsonTest, "postgresql")
def _json_pg(element: _JsonTest, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _, value, as_json = (compiler.process(c, **kw) for c in element.clauses)
    json_type = f"jsonb_typeof({column} -> {key})"
    text = f"({column} ->> {key})"
    if element.op == "exists":
        return f"coalesce({json_type} <> 'null', false)"
    if element.op in ("contains", "icontains"):
        target = (
            text
            if element.op == "contains"
            else f"translate({text}, '{_UPPER}', '{_UPPER.lower()}')"
        )
        return (
            f"(CASE WHEN {json_type} = 'string' THEN strpos({target}, {value}) > 0 ELSE false END)"
        )
    if element.json_kind == "number":  # jsonb numbers compare as numeric
        compare = f"({column} -> {key}) {_ORDER[element.op]} CAST({as_json} AS JSONB)"
        return f"(CASE WHEN {json_type} = 'number' THEN {compare} ELSE false END)"
    compare = f'{text} COLLATE "C" {_ORDER[element.op]} {value}'
    return f"(CASE WHEN {json_type} = 'string' THEN {compare} ELSE false END)"


def _json_clause(key: str, op: str, value: Any) -> ColumnElement[bool]:
    column = MemoryRow.metadata_
    if op == "eq":
        if value is None:  # the key is missing or null
            return column[key].as_string().is_(None)
        return func.coalesce(json_key_equals(column, key, value), false())
    if op == "ne":
        return not_(_json_clause(key, "eq", value))
    if op == "in":
        return or_(*(_json_clause(key, "eq", v) for v in value))
    if op == "nin":
        return not_(_json_clause(key, "in", value))
    if op == "exists":
        test = _JSON_TESTS[("exists", "string")](*_json_args(key, ""))
        return test if value else not_(test)
    if op == "icontains":
        value = _ascii_lower(value)
    kind = "string" if isinstance(value, str) else "number"
    return _JSON_TESTS[(op, kind)](*_json_args(key, value))


def _json_args(key: str, value: Any) -> tuple[Any, ...]:
    return (
        MemoryRow.metadata_,
        bindparam(None, key, type_=String()),
        bindparam(None, f'$."{key}"', type_=String()),
        bindparam(None, value),
        bindparam(None, json.dumps(value), type_=String()),
    )


def _column_clause(name: str, op: str, value: Any) -> ColumnElement[bool]:
    column = _COLUMNS[name]
    present = column.is_not(None)
    if op == "exists":
        return present if value else column.is_(None)
    if op == "ne":
        return or_(column.is_(None), column != value)
    if op == "nin":
        return or_(column.is_(None), column.not_in(list(value)))
    if op == "eq":
        test = column == value
    elif op == "in":
        test = column.in_(list(value))
    elif op == "contains":
        test = _Position(column, bindparam(None, value, type_=String())) > 0
    elif op == "icontains":
        needle = bindparam(None, _ascii_lower(value), type_=String())
        test = _Position(_AsciiLower(column), needle) > 0
    else:
        test = _COMPARE[op](column, value)
    return and_(present, test)


def filter_clause(tree: FilterTree) -> ColumnElement[bool]:
    """The SQL condition of ``tree`` on memory rows (never NULL)."""
    if isinstance(tree, AllOf):
        return and_(true(), *(filter_clause(t) for t in tree.items))
    if isinstance(tree, AnyOf):
        return or_(false(), *(filter_clause(t) for t in tree.items))
    if isinstance(tree, NoneOf):
        return not_(filter_clause(tree.item))
    if tree.field == "metadata":
        assert tree.key is not None
        return _json_clause(tree.key, tree.op, tree.value)
    return _column_clause(tree.field, tree.op, tree.value)
