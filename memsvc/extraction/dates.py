"""Relative dates resolved against the time a message was said.

"I went there yesterday", said on 8 May 2023, becomes "... on 7 May 2023": the fact stays true
when read later, and the resolved day becomes the memory's ``occurred_at``. Absolute dates
("8 May 2023", "May 2023", "2022") are recognised but left as written.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from memsvc.retrieval.render import format_day

__all__ = ["ResolvedDate", "resolve_dates"]

_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a few": 3, "a couple of": 2, "couple of": 2,
}  # fmt: skip
_WEEKDAYS = [d.lower() for d in calendar.day_name]
_MONTHS = {m.lower(): n for n, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): n for n, m in enumerate(calendar.month_abbr) if m})


@dataclass(frozen=True)
class ResolvedDate:
    """Where the text happened in time: the day and how precise it is."""

    day: datetime  # midnight UTC of the (first) day meant
    granularity: str  # day, week, month, year


def _midnight(value: datetime) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _add_months(value: datetime, months: int) -> datetime:
    index = value.year * 12 + value.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _month_year(value: datetime) -> str:
    return f"{value.strftime('%B')} {value.year}"


def _ago(amount: int, unit: str, ref: datetime) -> tuple[str, ResolvedDate]:
    if unit == "day":
        day = ref - timedelta(days=amount)
        return f"on {format_day(day)}", ResolvedDate(day, "day")
    if unit == "week":
        day = ref - timedelta(weeks=amount)
        return f"in the week of {format_day(day)}", ResolvedDate(day, "week")
    if unit == "month":
        day = _add_months(ref, -amount)
        return f"in {_month_year(day)}", ResolvedDate(day, "month")
    day = datetime(ref.year - amount, 1, 1, tzinfo=UTC)
    return f"in {day.year}", ResolvedDate(day, "year")


def _relative(word: str, unit: str, ref: datetime) -> tuple[str, ResolvedDate]:
    """``last``/``this``/``next`` + ``week``/``weekend``/``month``/``year``/weekday."""
    step = {"last": -1, "this": 0, "next": 1}[word]
    if unit in _WEEKDAYS:
        delta = _WEEKDAYS.index(unit) - ref.weekday()
        if step < 0:
            delta = delta - 7 if delta >= 0 else delta
        elif step > 0:
            delta = delta + 7 if delta <= 0 else delta
        day = ref + timedelta(days=delta)
        return f"on {format_day(day)}", ResolvedDate(day, "day")
    if unit in ("week", "weekend"):
        day = ref + timedelta(weeks=step)
        if unit == "weekend":
            day = day + timedelta(days=5 - day.weekday())  # that week's Saturday
            return f"on the weekend of {format_day(day)}", ResolvedDate(day, "day")
        if step == 0:
            return f"in the week of {format_day(ref)}", ResolvedDate(ref, "week")
        side = "before" if step < 0 else "after"
        return f"in the week {side} {format_day(ref)}", ResolvedDate(day, "week")
    if unit == "month":
        day = _add_months(ref, step)
        return f"in {_month_year(day)}", ResolvedDate(day, "month")
    day = datetime(ref.year + step, 1, 1, tzinfo=UTC)
    return f"in {day.year}", ResolvedDate(day, "year")


_NUM = "|".join(sorted((re.escape(k) for k in _NUMBERS), key=len, reverse=True))
_UNITS = "week|weekend|month|year|" + "|".join(_WEEKDAYS)
_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str], datetime], tuple[str, ResolvedDate]]]]
_RULES = [
    (
        re.compile(r"\b(?:the day before yesterday)\b", re.I),
        lambda m, ref: _ago(2, "day", ref),
    ),
    (re.compile(r"\b(?:yesterday|last night)\b", re.I), lambda m, ref: _ago(1, "day", ref)),
    (
        re.compile(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b", re.I),
        lambda m, ref: (f"on {format_day(ref)}", ResolvedDate(ref, "day")),
    ),
    (
        re.compile(r"\btomorrow\b", re.I),
        lambda m, ref: (
            f"on {format_day(ref + timedelta(days=1))}",
            ResolvedDate(ref + timedelta(days=1), "day"),
        ),
    ),
    (
        re.compile(rf"\b(\d+|{_NUM})\s+(day|week|month|year)s?\s+ago\b", re.I),
        lambda m, ref: _ago(
            int(m.group(1)) if m.group(1).isdigit() else _NUMBERS[m.group(1).lower()],
            m.group(2).lower(),
            ref,
        ),
    ),
    (
        re.compile(rf"\b(last|this|next)\s+({_UNITS})\b", re.I),
        lambda m, ref: _relative(m.group(1).lower(), m.group(2).lower(), ref),
    ),
]

_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ABSOLUTE = [
    re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"),
    re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_NAMES})\.?,?\s+(\d{{4}})\b", re.I),
    re.compile(rf"\b({_MONTH_NAMES})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I),
    re.compile(rf"\b({_MONTH_NAMES})\.?\s+(\d{{4}})\b", re.I),
]


def _absolute(text: str) -> ResolvedDate | None:
    for n, pattern in enumerate(_ABSOLUTE):
        m = pattern.search(text)
        if not m:
            continue
        try:
            if n == 0:
                y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
                return ResolvedDate(datetime(y, mo, d, tzinfo=UTC), "day")
            if n == 1:
                d, mo, y = int(m.group(1)), _MONTHS[m.group(2).lower()], int(m.group(3))
                return ResolvedDate(datetime(y, mo, d, tzinfo=UTC), "day")
            if n == 2:
                mo, d, y = _MONTHS[m.group(1).lower()], int(m.group(2)), int(m.group(3))
                return ResolvedDate(datetime(y, mo, d, tzinfo=UTC), "day")
            mo, y = _MONTHS[m.group(1).lower()], int(m.group(2))
            return ResolvedDate(datetime(y, mo, 1, tzinfo=UTC), "month")
        except ValueError:  # "31 February": not a date after all
            continue
    return None


def resolve_dates(text: str, said_at: datetime) -> tuple[str, ResolvedDate | None]:
    """``text`` with relative dates made absolute, and the first date it refers to."""
    ref = _midnight(said_at.astimezone(UTC))
    found: ResolvedDate | None = None
    for pattern, rewrite in _RULES:

        def replace(m: re.Match[str], rewrite=rewrite) -> str:
            nonlocal found
            phrase, resolved = rewrite(m, ref)
            found = found or resolved
            return phrase

        text = pattern.sub(replace, text)
    return text, found or _absolute(text)
