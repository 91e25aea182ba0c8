"""Aggregates an operator's metrics read at scrape time. Persistence only.

These are the operator's view across tenants (like the consolidation scan), grouped by tenant
where a metric is per tenant; the caller bounds how many tenants become labels.
"""

from __future__ import annotations

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stores.models import JobRow, KVCacheRow, KVLimitRow, SessionRow, WebhookDeliveryRow

__all__ = [
    "celery_queue_length",
    "deliveries_by_state",
    "jobs_by_state",
    "kv_bytes_by_tenant",
    "kv_quotas",
    "working_memory_events",
]


def working_memory_events(*, session: Session) -> int:
    """Events kept in working memory and not yet promoted, over every session."""
    stmt = select(func.coalesce(func.sum(SessionRow.kept_count - SessionRow.promoted_count), 0))
    return max(0, int(session.scalar(stmt) or 0))


def jobs_by_state(*, session: Session) -> dict[tuple[str, str], int]:
    """(kind, state) -> jobs, for the states not finished (the queue and what runs)."""
    stmt = (
        select(JobRow.kind, JobRow.state, func.count())
        .where(JobRow.state.in_(["queued", "running"]))
        .group_by(JobRow.kind, JobRow.state)
    )
    return {(kind, state): int(n) for kind, state, n in session.execute(stmt)}


def kv_bytes_by_tenant(*, session: Session) -> dict[str, int]:
    stmt = select(KVCacheRow.tenant_id, func.sum(KVCacheRow.size_bytes)).group_by(
        KVCacheRow.tenant_id
    )
    return {tenant: int(n or 0) for tenant, n in session.execute(stmt)}


def kv_quotas(*, session: Session) -> dict[str, int | None]:
    """Tenants' own KV quotas (None: the settings' default applies)."""
    stmt = select(KVLimitRow.tenant_id, KVLimitRow.quota_bytes)
    return {tenant: quota for tenant, quota in session.execute(stmt)}


def deliveries_by_state(*, session: Session) -> dict[str, int]:
    stmt = select(WebhookDeliveryRow.state, func.count()).group_by(WebhookDeliveryRow.state)
    return {state: int(n) for state, n in session.execute(stmt)}


def celery_queue_length(redis_url: str, queue: str, *, timeout: float) -> int:
    """Messages waiting in a Celery queue on its Redis broker (a list named as the queue)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return int(client.llen(queue))
    finally:
        client.close()
