"""Hypothesis strategies for hostile input, and mutators that plant it in generated requests.

Schemathesis generates requests from the OpenAPI document; its strings are UTF-8 encodable and
its numbers modest. These mutators replace one value (or add one key) of a generated body, query
or path with something a store may not keep: NUL, lone surrogates, invalid UTF-8, integers past
32 and 64 bits, deep JSON. Unmutated requests stay in the mix so that valid writes happen too.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "CURSOR_KEYS",
    "SEED_BODIES",
    "SEED_QUERIES",
    "evil_json",
    "evil_text",
    "forged_cursor",
    "known_params",
    "mutate_body",
    "mutate_params",
    "nested",
]

_SAMPLE_TEXT = [
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ud83d",  # the first half of an emoji
    "\ufffd",
    "\u202e\u0000",
    "%00",
    "'; DROP TABLE memories; --",
    " ",
    "0001-01-01T00:00:00+05:00",  # a valid timestamp that overflows in UTC
    "9999-12-31T23:59:59-05:00",
]
_SAMPLE_NUMBERS = [
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**30,
    -1,
    0,
    1e308,
    -1e308,
    5e-324,
]


def _cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


# The keys of each listing's cursor, and values of the wrong type or size to forge them with.
CURSOR_KEYS = {
    "/v1/memories": ("pk", "order"),
    "/v1/events": ("event_pk",),
    "/v1/sessions": ("session",),
    "/v1/graph/entities": ("pk",),
    "/v1/graph/relations": ("pk",),
    "/v1/kv": ("kv",),
    "/v1/cartridges": ("kv",),
}
_CURSOR_VALUES = [10**30, 2**63, -(2**63) - 1, -1, 1.5, "1", True, None, [1], {"a": 1}, "a\x00"]


def forged_cursor(keys: tuple[str, ...]) -> st.SearchStrategy[str]:
    """An opaque cursor with a listing's keys, holding values of the wrong type or size."""
    values = st.lists(st.sampled_from(_CURSOR_VALUES), min_size=len(keys), max_size=len(keys))
    return values.map(
        lambda vs: _cursor(
            {k: "desc" if k == "order" else v for k, v in zip(keys, vs, strict=True)}
        )
    )


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def nested(depth: int, leaf: Any = 1) -> Any:
    """``{"a": {"a": ... leaf}}``, ``depth`` objects deep."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def evil_text() -> st.SearchStrategy[str]:
    """Strings a store may not keep: NUL, surrogates (lone or mixed in), and odd ones."""
    return st.one_of(
        st.sampled_from(_SAMPLE_TEXT),
        st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
        st.text(st.characters(codec=None), min_size=1, max_size=8).map(lambda s: s + "\x00"),
    )


def evil_json() -> st.SearchStrategy[Any]:
    """Any hostile JSON value: text, huge or negative numbers, deep nesting."""
    return st.one_of(
        evil_text(),
        st.sampled_from(_SAMPLE_NUMBERS),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.integers(min_value=20, max_value=40).map(nested),
        st.integers(min_value=1, max_value=3).map(lambda n: {evil: 1 for evil in _SAMPLE_TEXT[:n]}),
    )


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    # Every place of a JSON value: the value itself, each member and each element.
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for n, child in enumerate(value):
            found += _paths(child, (*path, n))
    return found


def _at(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


def _hostile_for(current: Any) -> st.SearchStrategy[Any]:
    """A replacement of the same shape as ``current`` where one exists (a string for a string,
    a number for a number, a member under a hostile key or deep nesting for an object), so
    that it reaches the checks past the type validation; sometimes anything hostile."""
    if isinstance(current, str):
        same = evil_text()
    elif isinstance(current, bool) or current is None:
        same = evil_json()
    elif isinstance(current, (int, float)):
        same = st.one_of(st.sampled_from(_SAMPLE_NUMBERS), st.integers(-(2**70), 2**70))
    elif isinstance(current, dict):
        same = st.one_of(
            st.tuples(evil_text(), evil_json()).map(lambda kv: {**current, kv[0]: kv[1]}),
            st.tuples(st.sampled_from(["a", "k", "n"]), evil_json()).map(
                lambda kv: {**current, kv[0]: kv[1]}
            ),
        )
    else:  # a list
        same = evil_json().map(lambda v: [*current, v])
    return st.one_of(same, same, same, evil_json())


def _put(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _put(value[head], rest, new)}
    copy = list(value)
    copy[head] = _put(copy[head], rest, new)
    return copy


def _plant(body: Any, places: list[tuple]) -> st.SearchStrategy[Any]:
    # Deepest first, so that replacing a value does not discard a planting inside it.
    places = sorted(places, key=len, reverse=True)
    hostile = st.tuples(*(_hostile_for(_at(body, p)) for p in places))

    def apply(values: tuple) -> Any:
        planted = body
        for place, value in zip(places, values, strict=True):
            planted = _put(planted, place, value)
        return planted

    return hostile.map(apply)


def mutate_body(body: Any) -> st.SearchStrategy[Any]:
    """``body`` unchanged, or with hostile values planted in one to three places."""
    if not isinstance(body, (dict, list)):
        return st.just(body)
    places = st.lists(st.sampled_from(_paths(body)), min_size=1, max_size=3, unique=True)
    return st.one_of(st.just(body), places.flatmap(lambda ps: _plant(body, ps)))


def mutate_params(
    params: dict[str, Any] | None, *, query: bool, cursor_keys: tuple[str, ...] = ()
) -> st.SearchStrategy[Any]:
    """Path or query parameters, unchanged or with one made hostile. URLs carry no lone
    surrogates; query strings also get invalid UTF-8, and listings forged cursors."""
    if not params and not cursor_keys:
        return st.just(params)
    params = params or {}
    values: list[st.SearchStrategy[Any]] = [
        st.sampled_from([t for t in _SAMPLE_TEXT if not _has_surrogate(t)]),
        st.sampled_from([str(n) for n in _SAMPLE_NUMBERS]),
        st.just('{"a": ' * 40 + "1" + "}" * 40),  # deep JSON in a JSON-valued parameter
    ]
    if query:
        values.append(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"a\xc3"]))
    planted = st.tuples(st.sampled_from(sorted(params) or ["cursor"]), st.one_of(values))
    mutations = [st.just(params), planted.map(lambda p: {**params, p[0]: p[1]})]
    if cursor_keys:
        mutations.append(forged_cursor(cursor_keys).map(lambda c: {**params, "cursor": c}))
    return st.one_of(mutations)


def known_params(params: dict[str, Any] | None, known: list[str]) -> st.SearchStrategy[Any]:
    """Path parameters set to ids the API gave out so far (read when drawn: the list grows)."""
    if not params:
        return st.just(params)

    def pick(picks: list[int]) -> dict[str, Any]:
        if not known:
            return params
        return {name: known[n % len(known)] for name, n in zip(params, picks, strict=True)}

    return st.lists(st.integers(0, 10**6), min_size=len(params), max_size=len(params)).map(pick)


#: Realistic request bodies per route: hostile values are planted in them, so that accepted
#: writes carry them into every table (random bodies are mostly refused before the service).
SEED_BODIES: dict[tuple[str, str], list[Any]] = {
    ("POST", "/v1/memories"): [
        {"text": "likes green tea", "user_id": "u1", "metadata": {"src": "chat", "n": 7}},
        {"items": [{"text": "moved to Berlin", "session_id": "s1", "metadata": {"t": "abc"}}]},
        {"text": "a plan", "kind": "plan", "occurred_at": "2024-05-01T10:00:00+02:00"},
    ],
    ("PATCH", "/v1/memories/{memory_id}"): [
        {"text": "likes black tea", "metadata": {"n": 8, "deep": {"a": [1, 2]}}},
        {"importance": 0.9, "valid_from": "2024-01-01T00:00:00Z"},
    ],
    ("POST", "/v1/events"): [
        {
            "session_id": "s1",
            "user_id": "u1",
            "events": [
                {"role": "user", "content": "I moved to Lisbon last week", "metadata": {"k": 1}},
                {"role": "assistant", "content": "How do you like it?", "speaker": "bot"},
            ],
        }
    ],
    ("POST", "/v1/search"): [
        {"query": "tea", "filters": {"user_id": "u1", "metadata": {"n": 7, "src": "chat"}}},
        {"query": "tea", "filters": {"metadata": {"src": 7.5, "n": 2**40}}},
        {"query": "Berlin", "top_k": 5, "filters": {"kind": ["fact"], "as_of": "2024-01-01"}},
    ],
    ("POST", "/v1/context"): [{"query": "where do I live", "user_id": "u1", "session_id": "s1"}],
    ("POST", "/v1/consolidate"): [{"session_id": "s1"}, {"user_id": "u1"}],
    ("POST", "/v1/admin/tenants"): [{"name": "acme", "id": "acme-1"}],
    ("POST", "/v1/admin/tenants/{tenant_id}/keys"): [{"name": "ci"}],
    ("POST", "/v1/kv/lookup"): [{"model_id": "m", "token_ids": [1, 2, 3]}],
}
#: Realistic query strings, likewise.
SEED_QUERIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("GET", "/v1/memories"): [
        {"metadata": '{"n": 7}', "user_id": "u1"},
        {"metadata": '{"src": 7}'},  # a number filter on a key that holds strings
        {"metadata": '{"n": 4294967296}'},  # past 32 bits
        {"metadata": '{"t": "abc", "src": "chat"}', "kind": "fact"},
        {"created_after": "2024-01-01T00:00:00+05:00", "order": "asc", "limit": 2},
    ],
    ("DELETE", "/v1/memories"): [{"user_id": "u-none", "metadata": '{"n": 7}'}],
    ("GET", "/v1/events"): [{"session_id": "s1", "after": "2024-01-01T00:00:00Z", "limit": 1}],
    ("GET", "/v1/graph/relations"): [{"as_of": "2024-01-01T00:00:00Z"}],
}
