"""A tiny Python evaluator of ``where`` expressions: the reference the SQL is checked against."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from memsvc.schemas.filters import All, Any_, Condition, Leaf, Not, parse_where


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_type(a: Any, b: Any) -> bool:
    if _number(a) and _number(b):
        return True
    return type(a) is type(b)


def _lower(text: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


def _stored(memory: dict[str, Any], leaf: Leaf) -> Any:
    if leaf.key is not None:
        return memory["metadata"].get(leaf.key)
    value = memory[leaf.field]
    if isinstance(value, str) and leaf.field.endswith(("_at", "_from", "_to")):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def _leaf(memory: dict[str, Any], leaf: Leaf) -> bool:
    stored, op, value = _stored(memory, leaf), leaf.op, leaf.value
    if op == "exists":
        return (stored is not None) == value
    if op == "ne":
        return not _leaf(memory, Leaf(leaf.field, "eq", value, leaf.key))
    if op == "nin":
        return not _leaf(memory, Leaf(leaf.field, "in", value, leaf.key))
    if op == "in":
        return any(_leaf(memory, Leaf(leaf.field, "eq", v, leaf.key)) for v in value)
    if op == "eq" and value is None:
        return stored is None
    if stored is None or not _same_type(stored, value):
        return False
    if op == "eq":
        return stored == value
    if op == "contains":
        return value in stored
    if op == "icontains":
        return _lower(value) in _lower(stored)
    return {
        "gt": stored > value,
        "gte": stored >= value,
        "lt": stored < value,
        "lte": stored <= value,
    }[op]


def evaluate(memory: dict[str, Any], condition: Condition) -> bool:
    """Does ``memory`` (a MemoryPublic as JSON) satisfy ``condition``?"""
    if isinstance(condition, All):
        return all(evaluate(memory, c) for c in condition.items)
    if isinstance(condition, Any_):
        return any(evaluate(memory, c) for c in condition.items)
    if isinstance(condition, Not):
        return not evaluate(memory, condition.item)
    return _leaf(memory, condition)


def matching(memories: list[dict[str, Any]], where: dict[str, Any]) -> set[str]:
    condition = parse_where(where)
    return {m["text"] for m in memories if evaluate(m, condition)}
