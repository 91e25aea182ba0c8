"""Input checks that depend on settings (sizes, limits); each error names its field.

Request models already refused what no store can keep (``memsvc.schemas.untrusted``); these
checks add the configurable limits, and repeat the untrusted-value check for values that reach
the service without a request model (metadata given as a query parameter, cursors).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from memsvc.errors import InvalidRequestError
from memsvc.schemas import MemoryFilter
from memsvc.schemas.untrusted import MAX_INT, find_unsafe, json_depth, unsafe_text
from memsvc.settings import Settings

__all__ = [
    "check_filter",
    "check_metadata",
    "check_text",
    "decode_cursor",
    "encode_cursor",
]

_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# A cursor is opaque but small: a base64 JSON object of a few ids.
_MAX_CURSOR_CHARS = 512
_MAX_CURSOR_STR = 256


def _field_of(field: str, at: tuple[str | int, ...]) -> str:
    return field + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in at)


def check_text(settings: Settings, text: str, field: str) -> str:
    """The text itself, refused when empty (after trimming) or longer than the limit."""
    if not text.strip():
        raise InvalidRequestError(f"{field} must not be empty", field=field)
    if len(text) > settings.max_text_chars:
        raise InvalidRequestError(
            f"{field} has {len(text)} characters; the limit is {settings.max_text_chars}",
            field=field,
        )
    return text


def _check_keys(metadata: Mapping[str, Any], field: str) -> None:
    for key in metadata:
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise InvalidRequestError(
                f"{field} key {key!r} must be 1-64 characters of letters, digits, _ . : -",
                field=field,
            )


def check_metadata(settings: Settings, metadata: dict[str, Any], field: str) -> dict[str, Any]:
    """Metadata a store can keep and give back: keys of ``[A-Za-z0-9_.:-]``, storable values,
    at most ``max_metadata_depth`` levels and ``max_metadata_bytes`` bytes of JSON."""
    if not isinstance(metadata, dict):
        raise InvalidRequestError(f"{field} must be a JSON object", field=field)
    _check_keys(metadata, field)
    at, problem = find_unsafe(metadata)
    if problem:
        where = _field_of(field, at)
        raise InvalidRequestError(f"{where}: value {problem}", field=where)
    depth, most = json_depth(metadata), settings.max_metadata_depth
    if depth > most:
        raise InvalidRequestError(f"{field} nests {depth} levels; the limit is {most}", field=field)
    size = len(json.dumps(metadata, allow_nan=False).encode())
    if size > settings.max_metadata_bytes:
        raise InvalidRequestError(
            f"{field} is {size} bytes as JSON; the limit is {settings.max_metadata_bytes}",
            field=field,
        )
    return metadata


def check_filter(settings: Settings, filters: MemoryFilter, field: str = "filters") -> None:
    """A metadata filter of at most ``max_filter_keys`` keys, each a valid metadata key."""
    metadata = filters.metadata or {}
    where = f"{field}.metadata" if field else "metadata"
    if len(metadata) > settings.max_filter_keys:
        raise InvalidRequestError(
            f"{where} has {len(metadata)} keys; the limit is {settings.max_filter_keys}",
            field=where,
        )
    _check_keys(metadata, where)


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_value_ok(value: Any, kind: type) -> bool:
    if kind is int:
        return type(value) is int and 0 <= value <= MAX_INT
    return type(value) is str and len(value) <= _MAX_CURSOR_STR and unsafe_text(value) is None


def decode_cursor(cursor: str, expected: Mapping[str, type[int] | type[str]]) -> dict[str, Any]:
    """Parse an opaque cursor holding exactly the keys of ``expected``, each of its type (ints
    in ``[0, 2**63)``, short strings); anything else is a 422 naming ``cursor``."""
    malformed = InvalidRequestError("cursor is malformed", field="cursor")
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise malformed
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeError) as exc:
        raise malformed from exc
    if not isinstance(position, dict) or set(position) != set(expected):
        raise malformed
    if not all(_cursor_value_ok(position[k], kind) for k, kind in expected.items()):
        raise malformed
    return position
