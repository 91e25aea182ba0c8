"""The background runtime of a serving process: its threads and how their work is paced.

A :class:`BackgroundRuntime` owns what runs beside the requests of one process: the
maintenance loop, the job thread (consolidation and cartridge training when embedded), and the
pacing of that work (:class:`Pace`): background work waits, between units of work, until the
requests have paused (:class:`~memsvc.service.activity.ForegroundActivity`), and stops between
units when the process shuts down. Work run on a request's own thread or by a Celery worker is
not paced (:data:`UNPACED`): it neither waits nor is stopped.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from memsvc.config.consolidation import ConsolidationConfig
from memsvc.service.activity import ForegroundActivity
from memsvc.service.availability import DEPENDENCY_ERRORS

__all__ = ["UNPACED", "BackgroundRuntime", "Pace"]

log = logging.getLogger(__name__)


class Pace(Protocol):
    """How long work is paced between its units (batches of events, of sentences)."""

    @property
    def stopping(self) -> bool:
        """True once the process shuts down: stop before the next unit (work is idempotent
        and resumes from its watermark)."""

    def yield_to_requests(self) -> float:
        """Wait until the requests have paused (never longer than the configured bound);
        returns the seconds waited."""


class _Unpaced:
    """Work that takes its thread as it is: a request's own, or a Celery worker's."""

    stopping = False

    def yield_to_requests(self) -> float:
        return 0.0


#: The pace of work run where nothing competes with it for the cores.
UNPACED: Pace = _Unpaced()


class BackgroundRuntime:
    """Threads and pacing of the background work of one serving process (a :class:`Pace`)."""

    def __init__(self, config: ConsolidationConfig) -> None:
        self.config = config
        # Requests being served; background work in this process yields to them.
        self.activity = ForegroundActivity()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._maintenance: threading.Thread | None = None
        self._jobs: ThreadPoolExecutor | None = None
        self._loops: dict[str, threading.Thread] = {}

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def yield_to_requests(self) -> float:
        """Wait until no request has run for ``yield_quiet_seconds``, at most
        ``yield_max_seconds`` (a steady stream of requests cannot starve the work)."""
        return self.activity.wait_for_quiet(
            self.config.yield_quiet_seconds, self.config.yield_max_seconds, self._stop
        )

    def start(self, tick: Callable[[], None], interval_s: float = 5.0) -> None:
        """Run ``tick`` every ``interval_s`` seconds on a daemon thread, off the request path."""
        with self._lock:
            if self._maintenance is not None:
                return
            self._maintenance = self._loop("memsvc-maintenance", tick, interval_s)

    def every(self, name: str, fn: Callable[[], object], interval_s: float) -> None:
        """Run ``fn`` every ``interval_s`` seconds on a daemon thread of its own (the embedded
        webhook sender), until close; once per name."""
        with self._lock:
            if name not in self._loops:
                self._loops[name] = self._loop(name, fn, interval_s)

    def _loop(self, name: str, fn: Callable[[], object], interval_s: float) -> threading.Thread:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    fn()
                except DEPENDENCY_ERRORS as exc:  # the database or Redis is away
                    log.warning("background %s skipped: %s", name, exc)
                except Exception:  # a background loop must not die; the next tick retries
                    log.exception("background %s failed", name)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        return thread

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn`` on the job thread (one job at a time, in order)."""
        with self._lock:
            if self._jobs is None:
                self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memsvc-job")
        # In a copy of the caller's context: the job's log lines carry the request's id.
        future = self._jobs.submit(contextvars.copy_context().run, fn, *args, **kwargs)
        future.add_done_callback(_log_failure)
        return future

    def close(self) -> None:
        """Stop the loop and the job thread (work stops between its units)."""
        self._stop.set()
        if self._jobs is not None:
            self._jobs.shutdown(wait=True, cancel_futures=True)
        if self._maintenance is not None:
            self._maintenance.join(timeout=30)
        for thread in self._loops.values():
            thread.join(timeout=30)


def _log_failure(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("background job failed", exc_info=future.exception())
