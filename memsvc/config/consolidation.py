"""Knobs of sleep-time consolidation; the defaults are the recommended settings."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ConsolidationConfig"]


class ConsolidationConfig(BaseModel):
    """``MEMSVC_CONSOLIDATION__<NAME>`` in the environment."""

    # Beat: how often to look for idle sessions, lost jobs and backlog; how often to decay.
    scan_seconds: float = Field(default=30.0, gt=0)
    decay_seconds: float = Field(default=3600.0, gt=0)
    # A queued or running job untouched this long is dispatched again (idempotent steps).
    stale_job_seconds: float = Field(default=300.0, gt=0)
    # Redis broker: an unacknowledged task is redelivered after this long (acks_late).
    visibility_timeout_seconds: float = Field(default=3600.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    retry_backoff_max_seconds: int = Field(default=60, ge=1)
    # Embedded, a background job gives the cores to requests: between batches it waits until
    # no request has run for yield_quiet_seconds, at most yield_max_seconds (no starvation).
    # A Celery worker serves no requests and never waits.
    yield_quiet_seconds: float = Field(default=0.5, ge=0.0)
    yield_max_seconds: float = Field(default=30.0, ge=0.0)
    # Events extracted per transaction (the watermark advances once per batch).
    batch_events: int = Field(default=200, ge=1)
    # Merge: cosine at or above which two statements about the same entities are one.
    merge_similarity: float = Field(default=0.88, ge=0.0, le=1.0)
    # Episodes: a topic segment needs this many kept events; at most this many sentences.
    episode_min_events: int = Field(default=3, ge=1)
    episode_max_sentences: int = Field(default=3, ge=1)
    # Decay: half-life of an unused memory of importance 0 (each retrieval doubles it), the
    # strength below which it is archived, and the importance that is never archived.
    half_life_days: float = Field(default=30.0, gt=0)
    archive_below: float = Field(default=0.05, ge=0.0, le=1.0)
    pinned_importance: float = Field(default=0.9, ge=0.0, le=1.0)
