"""Input checks that depend on settings (sizes, limits); each error names its field."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from memsvc.errors import InvalidRequestError
from memsvc.settings import Settings

__all__ = ["check_metadata", "check_text", "decode_cursor", "encode_cursor"]

_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_MAX_METADATA_BYTES = 16_384


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


def check_metadata(metadata: dict[str, Any], field: str) -> dict[str, Any]:
    for key in metadata:
        if not _METADATA_KEY.match(key):
            raise InvalidRequestError(
                f"{field} key {key!r} must be 1-64 characters of letters, digits, _ . : -",
                field=field,
            )
    try:
        size = len(json.dumps(metadata, allow_nan=False))
    except ValueError as exc:
        raise InvalidRequestError(f"{field} is not valid JSON: {exc}", field=field) from exc
    if size > _MAX_METADATA_BYTES:
        raise InvalidRequestError(
            f"{field} is {size} bytes as JSON; the limit is {_MAX_METADATA_BYTES}", field=field
        )
    return metadata


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, expected_keys: set[str]) -> dict[str, Any]:
    """Parse an opaque cursor; anything malformed is a 422 naming ``cursor``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError("cursor is malformed", field="cursor") from exc
    if not isinstance(position, dict) or set(position) != expected_keys:
        raise InvalidRequestError("cursor is malformed", field="cursor")
    return position
