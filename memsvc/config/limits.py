"""Settings of the request guards: idempotency keys, per-key rate limits, dependency timeouts.

Each is a nested part of :class:`~memsvc.settings.Settings` (``MEMSVC_IDEMPOTENCY__*``,
``MEMSVC_RATE_LIMIT__*``, ``MEMSVC_DEPENDENCIES__*``). The defaults leave normal use and the
benchmarks undisturbed: rate limiting is off, timeouts are far above a healthy request's time.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["DependencyConfig", "IdempotencyConfig", "RateLimitConfig"]


class IdempotencyConfig(BaseModel):
    """``Idempotency-Key`` on write requests (see docs/security.md, "Idempotency")."""

    # How long a key's first reply is kept and replayed (Stripe keeps them for 24 hours).
    ttl_seconds: float = Field(default=86_400.0, gt=0)
    # How long a request in flight holds its key on routes that store the reply after the
    # write (not events/memories, which store it in the write's own transaction): a retry
    # meanwhile is a 409; after it, the key is taken over (the first request is presumed dead).
    lock_seconds: float = Field(default=120.0, gt=0)
    # The longest accepted key (characters; printable ASCII without spaces).
    max_key_length: int = Field(default=255, ge=8, le=255)
    # Background clean-up of expired keys, at most this often per process.
    purge_interval_seconds: float = Field(default=60.0, gt=0)


class RateLimitConfig(BaseModel):
    """Per-API-key request rate (GCRA; shared through Redis when ``MEMSVC_REDIS_URL`` is set)."""

    # Sustained requests per second per key; 0 turns rate limiting off (the default).
    requests_per_second: float = Field(default=0.0, ge=0)
    # Requests a key may send at once (the bucket's size), refilled at the sustained rate.
    burst: int = Field(default=100, ge=1)
    # After a Redis error, count in this process alone for this long before asking Redis again.
    redis_retry_seconds: float = Field(default=5.0, gt=0)


class DependencyConfig(BaseModel):
    """Bounds on waiting for PostgreSQL and Redis, so an outage is a quick 503, never a hang."""

    # Opening a database connection (PostgreSQL ``connect_timeout``).
    db_connect_timeout_seconds: int = Field(default=5, ge=1)
    # Waiting for a free connection of the pool.
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # Longest statement (PostgreSQL ``statement_timeout``); 0 means no limit.
    db_statement_timeout_seconds: float = Field(default=60.0, ge=0)
    # Connecting to Redis and waiting for one of its answers.
    redis_timeout_seconds: float = Field(default=5.0, gt=0)
    # The ``Retry-After`` a 503 carries while a dependency is away.
    retry_after_seconds: int = Field(default=2, ge=1)
