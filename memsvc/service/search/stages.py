"""Timing of the search pipeline's stages: a histogram sample per stage
(``memsvc_search_stage_seconds``) and, when tracing is on, a span per stage."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from memsvc.observability import metrics, tracing

__all__ = ["Stages"]

_STAGES = ("sync", "embed", "candidates", "retrieve", "fuse", "materialise", "total")
# Children bound once: labels() per sample costs a dictionary lookup under a lock.
_OBSERVE = {name: metrics.SEARCH_STAGE_SECONDS.labels(name).observe for name in _STAGES}
_SEARCHES = metrics.SEARCHES.labels("search")


class Stages:
    """``with stages("embed"): ...`` times one stage; :meth:`done` records the whole search.

    A plain context manager (no generator, no allocation per stage): it runs seven times per
    search, metrics on or off."""

    __slots__ = ("_name", "_span", "_start", "record", "started")

    def __init__(self, record: bool) -> None:
        self.record = record
        self.started = time.perf_counter()
        self._name = ""
        self._start = 0.0
        self._span: Any = None

    def __call__(self, name: str) -> Stages:
        self._name = name
        return self

    def __enter__(self) -> None:
        if tracing.enabled():
            self._span = tracing.span(f"search.{self._name}")
            self._span.__enter__()
        self._start = time.perf_counter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.record:
            _OBSERVE[self._name](time.perf_counter() - self._start)
        if self._span is not None:
            span, self._span = self._span, None
            span.__exit__(kind, error, trace)

    def done(self) -> None:
        if self.record:
            _OBSERVE["total"](time.perf_counter() - self.started)
            _SEARCHES.inc()
