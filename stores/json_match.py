"""Equality on one key of a JSON column, typed the same way on SQLite and PostgreSQL.

``doc[key] == value`` compares JSON values: a number matches the same number (``7`` and
``7.0``), never a string or a boolean; a string matches only that string. No stored value is
ever cast, so a row whose value has another type simply does not match (a cast made one
``{"t": "abc"}`` row fail every ``{"t": 7}`` query of its tenant on PostgreSQL), and numbers
compare without a fixed-width type (no overflow past 2**31 or 2**63).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Boolean, ColumnElement, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["json_key_equals"]


class _JsonEquals(FunctionElement[bool]):
    """Arguments: the JSON column, the key, the SQLite JSON path, the value (SQLite), the
    value as JSON text (PostgreSQL). Each dialect renders the arguments it needs."""

    type = Boolean()
    inherit_cache = True
    # json_type() results that count as this kind on SQLite.
    sqlite_types: tuple[str, ...] = ()


class _NumberEquals(_JsonEquals):
    name = "json_number_equals"
    inherit_cache = True
    sqlite_types = ("integer", "real")


class _TextEquals(_JsonEquals):
    name = "json_text_equals"
    inherit_cache = True
    sqlite_types = ("text",)


class _BooleanEquals(_JsonEquals):
    name = "json_boolean_equals"
    inherit_cache = True


@compiles(_JsonEquals, "postgresql")
def _postgresql(element: _JsonEquals, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, _, _, as_json = (compiler.process(c, **kw) for c in element.clauses)
    # jsonb equality is typed: numbers compare as numeric, strings and booleans as themselves.
    return f"(({column} -> {key}) = CAST({as_json} AS JSONB))"


@compiles(_JsonEquals, "sqlite")
def _sqlite(element: _JsonEquals, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, path, value, _ = element.clauses

    def sql(clause: Any) -> str:
        # Rendered at each use: SQLite binds are positional.
        return compiler.process(clause, **kw)

    json_type = f"json_type({sql(column)}, {sql(path)})"
    if isinstance(element, _BooleanEquals):  # json_type() is 'true' or 'false'
        return f"({json_type} = {sql(value)})"
    types = ", ".join(f"'{t}'" for t in element.sqlite_types)
    return f"({json_type} IN ({types}) AND json_extract({sql(column)}, {sql(path)}) = {sql(value)})"


def json_key_equals(column: ColumnElement[Any], key: str, value: str | int | float | bool) -> Any:
    """``column[key] == value`` as JSON values (see the module docstring)."""
    if isinstance(value, bool):
        kind: type[_JsonEquals] = _BooleanEquals
        sqlite_value: Any = "true" if value else "false"
    elif isinstance(value, (int, float)):
        kind, sqlite_value = _NumberEquals, value
    else:
        kind, sqlite_value = _TextEquals, str(value)
    return kind(
        column,
        bindparam(None, key, type_=String()),
        bindparam(None, f'$."{key}"', type_=String()),
        bindparam(None, sqlite_value),
        bindparam(None, json.dumps(value), type_=String()),
    )
