"""Per-API-key rate limits: GCRA (a token bucket kept as one timestamp per key).

Each key has a "theoretical arrival time" (TAT). A request at ``now`` is allowed when
``max(TAT, now) + interval - now <= burst * interval``, and then moves TAT by one interval;
otherwise it is refused with the wait until it would be allowed (``Retry-After``). A key can
send ``burst`` requests at once, then one per ``interval``.

With ``MEMSVC_REDIS_URL`` the TAT lives in Redis and is updated by one Lua script (atomic, on
Redis's own clock), so every replica shares one limit per key. Without it, or while Redis does
not answer (for ``redis_retry_seconds`` after an error), each process counts on its own.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from memsvc.config.limits import RateLimitConfig
from memsvc.errors import RateLimitError

__all__ = ["RateLimiter"]

log = logging.getLogger(__name__)

# KEYS[1]: the key's TAT (microseconds of Redis time); ARGV: interval, capacity (microseconds).
# Returns 0 when allowed, else the microseconds to wait.
_GCRA = """
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - capacity
if wait > 0 then return wait end
local ttl = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl)
return 0
"""

_PRUNE_AT = 10_000  # local entries before the idle ones are dropped


class RateLimiter:
    """Refuses a key's request beyond its rate with ``RateLimitError`` (429, Retry-After)."""

    def __init__(self, config: RateLimitConfig, redis_url: str = "", timeout: float = 5.0):
        self.enabled = config.requests_per_second > 0
        self._config = config
        self._interval = 1.0 / config.requests_per_second if self.enabled else 0.0
        self._capacity = config.burst * self._interval
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self._redis: redis.Redis | None = None
        self._redis_away_until = 0.0
        if self.enabled and redis_url:
            self._redis = redis.Redis.from_url(
                redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            self._script = self._redis.register_script(_GCRA)

    @property
    def blocking(self) -> bool:
        """Whether ``check`` does network I/O (call it off the event loop)."""
        return self._redis is not None

    def check(self, key_id: str) -> None:
        """Count one request of ``key_id``; raises ``RateLimitError`` when over the limit."""
        if not self.enabled:
            return
        wait = self._shared_wait(key_id)
        if wait is None:
            wait = self._local_wait(key_id, time.monotonic())
        if wait > 0:
            raise RateLimitError(
                f"rate limit of {self._config.requests_per_second:g} requests/s "
                f"(burst {self._config.burst}) exceeded for this API key; retry after "
                f"{wait:.2f}s",
                retry_after=wait,
            )

    def _shared_wait(self, key_id: str) -> float | None:
        """The wait by the limit shared in Redis; None when Redis is not used or not there."""
        if self._redis is None or time.monotonic() < self._redis_away_until:
            return None
        micros = round(self._interval * 1e6)
        try:
            wait = self._script(
                keys=[f"memsvc:rl:{key_id}"], args=[micros, micros * self._config.burst]
            )
        except redis.RedisError as exc:
            self._redis_away_until = time.monotonic() + self._config.redis_retry_seconds
            log.warning("rate limits counted per process for a while: Redis error %s", exc)
            return None
        return int(wait) / 1e6

    def _local_wait(self, key_id: str, now: float) -> float:
        with self._lock:
            tat = max(self._tat.get(key_id, now), now)
            wait = tat + self._interval - now - self._capacity
            if wait > 0:
                return wait
            self._tat[key_id] = tat + self._interval
            if len(self._tat) > _PRUNE_AT:
                self._tat = {k: v for k, v in self._tat.items() if v > now}
        return 0.0

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
