"""The one check every untrusted value passes: strings, numbers and nesting a store can keep.

A value that SQLite stores but cannot give back (a lone UTF-16 surrogate), that PostgreSQL
refuses (a NUL character), that overflows a 64-bit column or parameter (a huge integer), that
JSON cannot carry (NaN, infinity) or that is nested deeper than a serializer recurses, is refused
here, before anything is written. Request models apply it to every field (``Strict``), the API to
every path and query parameter, the service to metadata and cursors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from pydantic_core import ErrorDetails, PydanticCustomError

__all__ = [
    "MAX_INT",
    "MAX_NESTING",
    "MIN_INT",
    "error_location",
    "find_unsafe",
    "json_depth",
    "unsafe_text",
    "untrusted_error",
]

# Integers must fit a signed 64-bit column or bound parameter on both backends (SQLite INTEGER,
# PostgreSQL bigint); past that SQLite raises OverflowError and PostgreSQL "out of range".
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
# Objects and arrays nested deeper than this anywhere in a request are refused: the JSON
# serializers that write and answer them stop far below the parser's limit.
MAX_NESTING = 32

# NUL (PostgreSQL text and jsonb refuse it) and the surrogate code points. A well-formed pair in
# JSON (\ud83d\ude00) is decoded to one code point, so any surrogate left in a str is lone:
# UTF-8 cannot encode it, so it cannot be written to PostgreSQL or answered as JSON.
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def unsafe_text(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    if "\x00" not in text:  # the common case, at C speed: no NUL, and ASCII or encodable
        if text.isascii():
            return None
        try:
            text.encode("utf-8")
            return None
        except UnicodeEncodeError:
            pass
    found = _BAD_CHAR.search(text)
    if found is None:
        return None
    char = found.group()
    what = "a NUL character" if char == "\x00" else "a lone UTF-16 surrogate"
    return f"holds {what} (U+{ord(char):04X}) at index {found.start()}"


def _unsafe_scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return unsafe_text(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
        return f"is an integer outside the signed 64-bit range [{MIN_INT}, {MAX_INT}]"
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    return None


def _plain_ints(value: Any) -> bool:
    # Fast path for long lists of integers (token ids): min and max run in C.
    if not isinstance(value, list) or not value or not all(type(v) is int for v in value):
        return False
    return min(value) >= MIN_INT and max(value) <= MAX_INT


def _children(value: Any) -> Iterator[tuple[str | int | None, Any]]:
    # (key, child) pairs; a key of None marks a dict key itself, checked as a string.
    if isinstance(value, dict):
        for key, child in value.items():
            yield None, key
            yield key, child
    elif isinstance(value, (list, tuple, set, frozenset)):
        yield from enumerate(value)


def find_unsafe(value: Any, max_depth: int = MAX_NESTING) -> tuple[tuple[str | int, ...], str]:
    """The location (keys and indexes from ``value``) and problem of the first unsafe part of
    ``value``, or ``((), "")`` when there is none. Iterative: any depth is safe to inspect."""
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [((), value, 0)]
    while stack:
        path, item, depth = stack.pop()
        problem = _unsafe_scalar(item)
        if problem:
            return path, problem
        if isinstance(item, (dict, list, tuple, set, frozenset)):
            if depth >= max_depth:
                return path, f"is nested deeper than {max_depth} levels"
            if _plain_ints(item):
                continue
            for key, child in _children(item):
                if key is None:  # a dict key
                    if isinstance(child, str) and (problem := unsafe_text(child)):
                        return path, f"has a key that {problem}"
                    continue
                stack.append(((*path, key), child, depth + 1))
    return (), ""


def json_depth(value: Any) -> int:
    """How deeply objects and arrays nest in ``value`` (a scalar: 0, ``{"a": 1}``: 1)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            depth += 1
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children)
    return deepest


def untrusted_error(value: Any) -> PydanticCustomError | None:
    """A pydantic error for the first unsafe part of ``value``; its ``ctx["at"]`` holds the
    location inside the field (see :func:`error_location`)."""
    path, problem = find_unsafe(value)
    if not problem:
        return None
    return PydanticCustomError("unsafe_value", "value {problem}", {"problem": problem, "at": path})


def error_location(error: ErrorDetails) -> tuple[int | str, ...]:
    """A pydantic error's location, extended into the field for :func:`untrusted_error`; an
    error in a dict's key is located at the dict (its message names the key)."""
    loc = tuple(error.get("loc", ()))
    if loc[-1:] == ("[key]",):
        return loc[:-2]
    return (*loc, *error.get("ctx", {}).get("at", ()))
