"""The state gauges of ``/metrics``, read when scraped (a Prometheus custom collector).

Working memory, the job queue, index sizes, KV bytes and quota use are facts of the database,
Redis and this process's indexes, not counts of what this process did, so they are read at
scrape time instead of being recorded (every replica reports the same shared values; the
index sizes are this replica's loaded copy). Per-tenant families label the
``MEMSVC_METRICS__TENANT_LABELS`` largest tenants and sum the rest as ``tenant="other"``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from memsvc.service.availability import DEPENDENCY_ERRORS
from memsvc.service.deps import ServiceDeps
from stores import stats as store

__all__ = ["STATE_FAMILIES", "StateCollector", "top_tenants"]

log = logging.getLogger(__name__)
#: The Celery queue the API sends jobs to (``consolidation.app.QUEUE``).
QUEUE = "memsvc"
OTHER = "other"
#: The gauges :class:`StateCollector` yields (queue depth only with Redis configured).
STATE_FAMILIES = (
    "memsvc_working_memory_events",
    "memsvc_jobs",
    "memsvc_queue_depth",
    "memsvc_index_vectors",
    "memsvc_kv_bytes",
    "memsvc_kv_quota_used_ratio",
    "memsvc_webhook_deliveries",
)


def top_tenants(values: dict[str, float], limit: int) -> dict[str, float]:
    """The ``limit`` largest tenants by value, the rest summed under ``"other"`` (bounded
    label cardinality: at most ``limit + 1`` series)."""
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    out = dict(ranked[:limit])
    rest = ranked[limit:]
    if rest:
        out[OTHER] = sum(v for _, v in rest)
    return out


class StateCollector(Collector):
    """Gauges of the service's state, read at each scrape."""

    def __init__(self, deps: ServiceDeps) -> None:
        self.deps = deps

    def collect(self) -> Iterator[GaugeMetricFamily]:
        settings = self.deps.settings
        limit = settings.metrics.tenant_labels
        try:
            with self.deps.sessions() as session:  # one connection, a few aggregate reads
                working = store.working_memory_events(session=session)
                jobs = store.jobs_by_state(session=session)
                kv_bytes = store.kv_bytes_by_tenant(session=session)
                quotas = store.kv_quotas(session=session)
                deliveries = store.deliveries_by_state(session=session)
        except DEPENDENCY_ERRORS as exc:  # a scrape must answer while the database is away
            log.warning("metrics: database unavailable: %s", exc)
            return
        yield GaugeMetricFamily(
            "memsvc_working_memory_events",
            "Events kept in working memory and not yet promoted to long-term memory.",
            value=working,
        )
        family = GaugeMetricFamily(
            "memsvc_jobs", "Background jobs queued or running, by kind.", labels=["kind", "state"]
        )
        for state in ("queued", "running"):
            for kind in sorted({k for k, _ in jobs} | {"consolidate"}):
                family.add_metric([kind, state], jobs.get((kind, state), 0))
        yield family
        if settings.redis_url:
            try:
                depth = store.celery_queue_length(
                    settings.redis_url, QUEUE, timeout=settings.dependencies.redis_timeout_seconds
                )
                yield GaugeMetricFamily(
                    "memsvc_queue_depth", "Messages waiting in the Celery queue.", value=depth
                )
            except DEPENDENCY_ERRORS as exc:
                log.warning("metrics: redis unavailable: %s", exc)
        family = GaugeMetricFamily(
            "memsvc_index_vectors",
            "Vectors in this replica's dense index, per tenant (top tenants + other).",
            labels=["tenant"],
        )
        if self.deps.indexes_loaded:  # a scrape never loads them, only brings them up to date
            try:
                self.deps.sync_indexes()
            except DEPENDENCY_ERRORS as exc:  # the sizes as loaded, then
                log.warning("metrics: index sync skipped: %s", exc)
            sizes = self.deps.indexes.vectors.tenant_sizes()
            for tenant, n in top_tenants({t: float(v) for t, v in sizes.items()}, limit).items():
                family.add_metric([tenant], n)
        yield family
        family = GaugeMetricFamily(
            "memsvc_kv_bytes", "Bytes of stored KV containers, per tenant.", labels=["tenant"]
        )
        used = top_tenants({t: float(v) for t, v in kv_bytes.items()}, limit)
        for tenant, n in used.items():
            family.add_metric([tenant], n)
        yield family
        family = GaugeMetricFamily(
            "memsvc_kv_quota_used_ratio",
            "Stored KV bytes over the tenant's quota (labelled tenants only).",
            labels=["tenant"],
        )
        default = settings.kv.quota_bytes
        for tenant in used:
            if tenant == OTHER:
                continue
            quota = quotas.get(tenant) or default
            family.add_metric([tenant], kv_bytes.get(tenant, 0) / quota if quota else 0.0)
        yield family
        family = GaugeMetricFamily(
            "memsvc_webhook_deliveries", "Webhook deliveries by state.", labels=["state"]
        )
        for state in ("pending", "delivered", "failed"):
            family.add_metric([state], deliveries.get(state, 0))
        yield family
