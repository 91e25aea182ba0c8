"""Closed sets of values shared by the API contract and the database (a leaf: stdlib only).

The database enforces them with CHECK constraints built from these enums; the schemas type
their fields with them, so a new value is added in one place.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["JobState"]


class JobState(StrEnum):
    """Where a background job is: ``queued`` -> ``running`` -> ``succeeded`` or ``failed``
    (a retried attempt goes back to ``queued``)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)

    @classmethod
    def sql_check(cls, column: str = "state") -> str:
        """The CHECK constraint's condition: ``state IN ('queued', ...)``."""
        return f"{column} IN ({', '.join(repr(s.value) for s in cls)})"
