"""Timing of the search pipeline's stages: a histogram sample per stage
(``memsvc_search_stage_seconds``) and, when tracing is on, a span per stage."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from memsvc.observability import metrics, tracing

__all__ = ["Stages"]

_STAGES = ("sync", "embed", "candidates", "retrieve", "fuse", "materialise", "total")
# Children bound once: labels() per sample costs a dictionary lookup under a lock.
_OBSERVE = {name: metrics.SEARCH_STAGE_SECONDS.labels(name).observe for name in _STAGES}
_SEARCHES = metrics.SEARCHES.labels("search")


class Stages:
    """``with stages("embed"): ...`` times one stage; :meth:`done` records the whole search."""

    def __init__(self, record: bool) -> None:
        self.record = record
        self.started = time.perf_counter()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        with tracing.span(f"search.{name}"):
            yield
        if self.record:
            _OBSERVE[name](time.perf_counter() - start)

    def done(self) -> None:
        if self.record:
            _OBSERVE["total"](time.perf_counter() - self.started)
            _SEARCHES.inc()
