"""Webhooks: per-tenant subscriptions, the outbox written with each change, and delivery.

- **Outbox**: :func:`enqueue` inserts one delivery row per matching subscription in the
  transaction of the change itself (memory history, a job's final state), so an event is
  recorded exactly when its change commits, and a write never waits for a receiver.
- **Delivery** (:func:`deliver_due`): the Celery beat's ``memsvc.deliver_webhooks`` task in
  the stack, the background runtime's webhook thread when embedded. Due rows are claimed
  (moved ``claim_seconds`` ahead, ``SKIP LOCKED`` on PostgreSQL), POSTed signed
  (:mod:`memsvc.webhook_signature`), and each attempt is recorded; a non-2xx answer or an
  error is retried with exponential backoff and jitter up to ``max_attempts``, then the
  delivery is ``failed``. At least once: a sender that dies after a receiver's 2xx and before
  recording it sends again after the claim expires; receivers dedupe on the event id.
- **SSRF**: a URL's host must be in ``MEMSVC_WEBHOOKS__ALLOWED_HOSTS`` (loopback only by
  default), checked at creation and again before each attempt; redirects are not followed.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from memsvc.config.observability import WebhookConfig
from memsvc.errors import ConflictError, InvalidRequestError, NotFoundError
from memsvc.observability import metrics
from memsvc.schemas.webhooks import (
    WebhookAttemptPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryListParams,
    WebhookDeliveryPublic,
    WebhookPublic,
)
from memsvc.service.deps import ServiceDeps
from memsvc.webhook_signature import HEADER as SIGNATURE_HEADER
from memsvc.webhook_signature import signature_header
from stores import webhooks as store
from stores.models import WebhookAttemptRow, WebhookDeliveryRow, WebhookRow, utcnow

__all__ = [
    "OP_EVENTS",
    "any_subscription",
    "create_webhook",
    "delete_webhook",
    "deliver_due",
    "enqueue",
    "host_allowed",
    "list_deliveries",
    "list_webhooks",
    "memory_events",
]

log = logging.getLogger(__name__)

#: Memory history ops and the event each one is.
OP_EVENTS = {
    "ADD": "memory.added",
    "UPDATE": "memory.updated",
    "MERGE": "memory.updated",
    "RESTORE": "memory.updated",
    "ARCHIVE": "memory.updated",
    "DELETE": "memory.deleted",
    "INVALIDATE": "memory.invalidated",
}
USER_AGENT = "memsvc-webhooks/1"


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether ``host`` is allowed: an exact name or address, ``*.domain`` or ``*``."""
    host = host.lower().strip("[]").rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower().strip("[]").rstrip(".")
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


def _check_url(config: WebhookConfig, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError("url must be an http(s) URL with a host", field="url")
    if parts.username or parts.password:
        raise InvalidRequestError("url must not carry credentials", field="url")
    if not host_allowed(parts.hostname, config.allowed_hosts):
        raise InvalidRequestError(
            f"host {parts.hostname!r} is not allowed (MEMSVC_WEBHOOKS__ALLOWED_HOSTS)",
            field="url",
        )


def _public(row: WebhookRow) -> WebhookPublic:
    return WebhookPublic(
        id=row.id,
        url=row.url,
        event_types=list(row.event_types or []),
        description=row.description,
        created_at=row.created_at,
    )


def create_webhook(deps: ServiceDeps, tenant_id: str, body: WebhookCreate) -> WebhookCreated:
    config = deps.settings.webhooks
    _check_url(config, body.url)
    row = WebhookRow(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        url=body.url,
        event_types=sorted(set(body.event_types)),
        secret="whsec_" + secrets.token_urlsafe(32),
        description=body.description,
        created_at=utcnow(),
    )
    with deps.sessions.begin() as session:
        if store.count_webhooks(tenant_id, session=session) >= config.max_per_tenant:
            raise ConflictError(
                f"the tenant has {config.max_per_tenant} webhooks, the limit", field="url"
            )
        store.add_webhook(row, session=session)
    return WebhookCreated(**_public(row).model_dump(), secret=row.secret)


def any_subscription(deps: ServiceDeps) -> bool:
    """Whether any tenant has a subscription (the embedded sender starts only then)."""
    with deps.sessions() as session:
        return store.any_webhook(session=session)


def list_webhooks(deps: ServiceDeps, tenant_id: str) -> list[WebhookPublic]:
    with deps.sessions() as session:
        return [_public(r) for r in store.list_webhooks(tenant_id, session=session)]


def delete_webhook(deps: ServiceDeps, tenant_id: str, webhook_id: str) -> None:
    with deps.sessions.begin() as session:
        if not store.delete_webhook(tenant_id, webhook_id, session=session):
            raise NotFoundError(f"webhook {webhook_id} not found", field="webhook_id")


def list_deliveries(
    deps: ServiceDeps, tenant_id: str, webhook_id: str, params: WebhookDeliveryListParams
) -> list[WebhookDeliveryPublic]:
    with deps.sessions() as session:
        if store.get_webhook(tenant_id, webhook_id, session=session) is None:
            raise NotFoundError(f"webhook {webhook_id} not found", field="webhook_id")
        rows = store.deliveries_of(
            tenant_id, webhook_id, state=params.state, limit=params.limit, session=session
        )
        attempts = store.attempts_of(tenant_id, [r.id for r in rows], session=session)
        return [_delivery_public(r, attempts[r.id]) for r in rows]


def _delivery_public(row: WebhookDeliveryRow, attempts: list[WebhookAttemptRow]) -> Any:
    return WebhookDeliveryPublic(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        state=row.state,  # type: ignore[arg-type]
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
        delivered_at=row.delivered_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        payload=json.loads(row.body),
        attempt_log=[
            WebhookAttemptPublic(
                attempt=a.attempt,
                at=a.at,
                outcome=a.outcome,  # type: ignore[arg-type]
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
            for a in attempts
        ],
    )


# -- the outbox -----------------------------------------------------------------------------


def memory_events(entries: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events of memory history entries (``stores.memories.HistoryEntry``)."""
    events = []
    for e in entries:
        kind = OP_EVENTS.get(e.op)
        if kind is not None:
            data = {
                "memory_id": e.memory_id,
                "op": e.op,
                "actor": e.actor,
                "memory": e.new_value if e.new_value is not None else e.old_value,
            }
            if e.op in ("UPDATE", "MERGE") and e.old_value is not None:
                data["previous"] = e.old_value
            events.append((kind, data))
    return events


def enqueue(session: Any, tenant_id: str, events: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Write the deliveries of ``events`` for every subscription of the tenant that wants
    them, in the caller's transaction; returns how many. One indexed read when the tenant
    has no subscription."""
    if not events:
        return 0
    hooks = store.subscribers(tenant_id, session=session)
    if not hooks:
        return 0
    now = utcnow()
    rows = []
    for event_type, data in events:
        targets = [hook_id for hook_id, types in hooks if event_type in types]
        if not targets:
            continue
        event_id = str(uuid.uuid4())
        body = json.dumps(
            {
                "id": event_id,
                "type": event_type,
                "created_at": now.isoformat(),
                "tenant_id": tenant_id,
                "data": data,
            },
            separators=(",", ":"),
            default=str,
        )
        for hook_id in targets:
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "tenant_id": tenant_id,
                    "webhook_id": hook_id,
                    "event_id": event_id,
                    "event_type": event_type,
                    "body": body,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    store.add_deliveries(rows, session=session)
    return len(rows)


# -- delivery -------------------------------------------------------------------------------


def _backoff(config: WebhookConfig, attempts: int) -> float:
    delay = min(config.backoff_max_seconds, config.backoff_base_seconds * 2 ** (attempts - 1))
    return delay * random.uniform(0.8, 1.2)


def deliver_due(deps: ServiceDeps, *, client: httpx.Client | None = None) -> int:
    """Send every delivery due now (claimed in batches); returns how many were attempted."""
    config = deps.settings.webhooks
    own = client is None
    http = client or httpx.Client(timeout=config.timeout_seconds, follow_redirects=False)
    sent = 0
    try:
        while True:
            now = utcnow()
            with deps.sessions.begin() as session:
                due = store.claim_due(
                    now,
                    now + timedelta(seconds=config.claim_seconds),
                    limit=config.batch,
                    session=session,
                )
                hooks = store.webhooks_by_id([d.webhook_id for d in due], session=session)
                claimed = [(d.id, d.tenant_id, d.attempts, d.body, d.event_id, d.event_type,
                            d.webhook_id) for d in due]  # fmt: skip
                targets = {h.id: (h.url, h.secret) for h in hooks.values()}
            for delivery in claimed:
                target = targets.get(delivery[6])
                if target is not None:
                    _attempt(deps, config, http, delivery, *target)
                    sent += 1
            if len(claimed) < config.batch:
                return sent
    finally:
        if own:
            http.close()


def _attempt(
    deps: ServiceDeps,
    config: WebhookConfig,
    http: httpx.Client,
    delivery: tuple[str, str, int, str, str, str, str],
    url: str,
    secret: str,
) -> None:
    delivery_id, tenant_id, attempts, body, event_id, event_type, _ = delivery
    attempt = attempts + 1
    status: int | None = None
    error: str | None = None
    start = time.perf_counter()
    host = urlsplit(url).hostname or ""
    blocked = not host_allowed(host, config.allowed_hosts)  # the list changed since
    if blocked:
        error = f"host {host!r} is no longer allowed"
    else:
        raw = body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(secret, raw),
            "Memsvc-Event-Id": event_id,
            "Memsvc-Event-Type": event_type,
            "Memsvc-Delivery-Id": delivery_id,
            "Memsvc-Delivery-Attempt": str(attempt),
        }
        try:
            response = http.post(url, content=raw, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
    elapsed = time.perf_counter() - start
    now = utcnow()
    values: dict[str, Any] = {"attempts": attempt, "last_status_code": status, "last_error": error}
    if error is None:
        outcome = "delivered"
        values.update(state="delivered", delivered_at=now)
    elif blocked or attempt >= config.max_attempts:
        outcome = "failed"
        values.update(state="failed")
    else:
        outcome = "retry"
        values.update(next_attempt_at=now + timedelta(seconds=_backoff(config, attempt)))
    with deps.sessions.begin() as session:
        store.update_delivery(delivery_id, values, session=session)
        store.add_attempt(
            WebhookAttemptRow(
                delivery_id=delivery_id,
                tenant_id=tenant_id,
                attempt=attempt,
                at=now,
                outcome=outcome,
                status_code=status,
                error=error,
                duration_ms=round(elapsed * 1000, 3),
            ),
            session=session,
        )
    metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
    metrics.WEBHOOK_DELIVERY_SECONDS.observe(elapsed)
    if outcome != "delivered":
        log.warning(
            "webhook delivery %s attempt %d: %s (%s)",
            delivery_id,
            attempt,
            outcome,
            error,
            extra={"delivery_id": delivery_id, "tenant": tenant_id},
        )
