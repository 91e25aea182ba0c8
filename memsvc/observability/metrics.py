"""The Prometheus metric families of memsvc (``prometheus-client``), and their exposition.

Counters and histograms are recorded where things happen (the API's middleware, the search
stages, the consolidation pipeline, event and memory writes, webhook deliveries). Gauges of
state (working memory, queue depth, index sizes, KV bytes and quota use) are read when scraped
(``memsvc.service.stats``).

Several processes (``memsvc serve --workers N``, Celery's prefork children): set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory shared by the processes, before they start;
each then writes its samples to files there and :func:`exposition` sums them (prometheus
client's multiprocess mode). Without it each process counts for itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.registry import Collector

__all__ = [
    "CONSOLIDATION_JOBS",
    "CONSOLIDATION_JOB_SECONDS",
    "CONSOLIDATION_STEP_SECONDS",
    "CONTENT_TYPE",
    "EVENTS_WRITTEN",
    "MEMORIES_WRITTEN",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SEARCHES",
    "SEARCH_STAGE_SECONDS",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_DELIVERY_SECONDS",
    "exposition",
    "multiprocess_dir",
    "sample_names",
    "serve_worker_metrics",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# No ``*_created`` series: they double the exposition and no dashboard reads them.
disable_created_metrics()
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SLOW = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

REQUESTS = Counter(
    "memsvc_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "memsvc_http_request_duration_seconds",
    "Time to answer an HTTP request (until the response started), by route template.",
    ["method", "route", "status"],
    buckets=_FAST,
)
EVENTS_WRITTEN = Counter("memsvc_events_written", "Chat events appended to the event log.")
MEMORIES_WRITTEN = Counter(
    "memsvc_memories_written",
    "Long-term memory mutations committed, by history op "
    "(ADD, UPDATE, MERGE, DELETE, INVALIDATE, ARCHIVE, RESTORE).",
    ["op"],
)
SEARCHES = Counter(
    "memsvc_searches",
    "Searches run through the pipeline (/v1/search, and the one each /v1/context runs).",
    ["kind"],
)
SEARCH_STAGE_SECONDS = Histogram(
    "memsvc_search_stage_seconds",
    "Time in each stage of the search pipeline (embed, candidates, retrieve, fuse, "
    "materialise) and in all of it (total).",
    ["stage"],
    buckets=_FAST,
)
CONSOLIDATION_JOBS = Counter(
    "memsvc_consolidation_jobs",
    "Background jobs finished, by kind and outcome (succeeded, failed, retry).",
    ["kind", "outcome"],
)
CONSOLIDATION_JOB_SECONDS = Histogram(
    "memsvc_consolidation_job_seconds",
    "Wall time of a background job run, by kind and outcome.",
    ["kind", "outcome"],
    buckets=_SLOW,
)
CONSOLIDATION_STEP_SECONDS = Histogram(
    "memsvc_consolidation_step_seconds",
    "Wall time of each consolidation step (promote, extract, sentences, decay).",
    ["step"],
    buckets=_SLOW,
)
WEBHOOK_DELIVERIES = Counter(
    "memsvc_webhook_delivery_attempts",
    "Webhook delivery attempts, by outcome (delivered, retry, failed).",
    ["outcome"],
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "memsvc_webhook_delivery_seconds", "Time of one webhook delivery attempt.", buckets=_FAST
)


def multiprocess_dir() -> str | None:
    """The multiprocess directory, when this process runs in multiprocess mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition: this process's metrics (or every process's, summed, in
    multiprocess mode) plus ``extra`` collectors read now (state gauges)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Default(Collector):
    """The process-wide registry's families, inside a registry of one scrape."""

    def collect(self):  # type: ignore[no-untyped-def]
        return REGISTRY.collect()


def serve_worker_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve this process's metrics (every process's, in multiprocess mode) on ``port``, from
    a daemon thread (the Celery worker's main process calls it)."""
    from prometheus_client import start_http_server

    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(port, addr=host, registry=registry)
    else:
        start_http_server(port, addr=host)


def sample_names() -> set[str]:
    """The sample names the families above expose (``_total`` of counters; ``_bucket``,
    ``_count`` and ``_sum`` of histograms): what a dashboard's queries may name."""
    names: set[str] = set()
    for family in (v for v in globals().values() if isinstance(v, Counter | Histogram)):
        base = family._name  # type: ignore[attr-defined]
        if isinstance(family, Counter):
            names.add(f"{base}_total")
        else:
            names.update(f"{base}_{suffix}" for suffix in ("bucket", "count", "sum"))
    return names
