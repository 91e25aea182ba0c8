"""Presentation helpers for the inspector's templates: validity, ages, sizes, JSON.

Pure functions over the public models; nothing here reads data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from memsvc.schemas import MemoryPublic

__all__ = ["VALIDITIES", "age", "human_bytes", "parse_metadata_value", "pretty_json", "validity"]

#: The validity states a memory can be in, as the timeline filters them.
VALIDITIES = ("current", "future", "invalidated", "archived")


def validity(memory: MemoryPublic, now: datetime) -> str:
    """``archived`` (decayed out of default search), ``invalidated`` (its ``valid_to`` has
    passed: a later fact contradicted it), ``future`` (not valid yet) or ``current``."""
    if memory.archived_at is not None:
        return "archived"
    if memory.valid_to is not None and memory.valid_to <= now:
        return "invalidated"
    if memory.valid_from is not None and memory.valid_from > now:
        return "future"
    return "current"


def age(then: datetime | None, now: datetime | None = None) -> str:
    """``3 d 4 h``-style age of a timestamp."""
    if then is None:
        return "-"
    now = now or datetime.now(UTC)
    seconds = max(0, int((now - then).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def pretty_json(value: Any) -> str:
    """Readable JSON (escaped by the template like any other text)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def parse_metadata_value(text: str) -> Any:
    """A metadata filter value typed in a text box: a JSON scalar when it is one (``7``,
    ``true``, ``"7"`` for the string), else the text itself. Stored metadata compares typed
    (a number never equals a string), so the box must be able to say which it means."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str | int | float | bool) or value is None else text
