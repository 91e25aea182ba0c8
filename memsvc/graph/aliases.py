"""Short names merged into the person they shorten ("Mel" is Melanie).

A single-word person name of three letters or more that begins exactly one known person's
first name in the same scope (and is not that name) is taken as that person. Two candidates
("Sam" with Samantha and Samuel known) merge nothing: a wrong merge is worse than a duplicate.
"""

from __future__ import annotations

__all__ = ["SHORT_NAME_RULE", "short_name_targets"]

SHORT_NAME_RULE = "short form of a known person"


def _first(name: str) -> str:
    return name.split()[0].lower() if name.split() else ""


def short_name_targets(names: dict[str, str], known: dict[str, str]) -> dict[str, str]:
    """For each person key in ``names`` (key -> name) that is a short form of exactly one
    person in ``known`` (key -> name), the known key it stands for."""
    targets: dict[str, str] = {}
    for key, name in names.items():
        short = name.strip().lower()
        if " " in short or len(short) < 3:
            continue
        matches = {
            k for k, full in known.items()
            if "'" not in full and _first(full).startswith(short) and _first(full) != short
        }  # fmt: skip
        if len(matches) == 1:
            targets[key] = matches.pop()
    # A name both shortened and shortening ("Mel" -> "Melan" -> "Melanie") merges nothing.
    return {k: v for k, v in targets.items() if v not in targets}
