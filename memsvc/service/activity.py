"""Foreground activity of one process, so background work can give the cores to requests.

Embedded, consolidation runs in the same process as the API, on the same cores. Memory is
consolidated in "sleep time": a job waits between its batches while requests are being served
(or were a moment ago), and goes on when the process is quiet — or after ``max_wait`` seconds
whatever the load, so a steady stream of requests cannot starve it. A Celery worker serves no
requests, so there it never waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ForegroundActivity"]


class ForegroundActivity:
    """Counts requests in flight and remembers when the last one ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last_end = float("-inf")

    @contextmanager
    def request(self) -> Iterator[None]:
        """Mark the body as serving a request."""
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last_end = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds since the last request ended (0 while one is in flight)."""
        with self._lock:
            if self._in_flight:
                return 0.0
            return time.monotonic() - self._last_end

    def wait_for_quiet(
        self, quiet_s: float, max_wait_s: float, stop: threading.Event | None = None
    ) -> float:
        """Block until no request has run for ``quiet_s`` seconds, at most ``max_wait_s``.

        Returns the seconds waited. Returns early when ``stop`` is set (shutdown).
        """
        start = time.monotonic()
        while True:
            quiet = self.quiet_for()
            waited = time.monotonic() - start
            if quiet >= quiet_s or waited >= max_wait_s or (stop is not None and stop.is_set()):
                return waited
            # Sleep until the process could be quiet enough, in short steps.
            time.sleep(min(max(quiet_s - quiet, 0.01), 0.05, max_wait_s - waited))
