"""Webhook subscriptions, the delivery outbox and attempts. Persistence only: no business rules.

Every query of a tenant's rows takes the tenant; the sender's claim of due deliveries is the
one cross-tenant query (it is the operator's process that sends them all).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from stores.models import WebhookAttemptRow, WebhookDeliveryRow, WebhookRow

__all__ = [
    "add_attempt",
    "add_deliveries",
    "add_webhook",
    "any_webhook",
    "attempts_of",
    "claim_due",
    "count_webhooks",
    "delete_webhook",
    "deliveries_of",
    "get_webhook",
    "list_webhooks",
    "subscribers",
    "update_delivery",
    "webhooks_by_id",
]


def add_webhook(row: WebhookRow, *, session: Session) -> None:
    session.add(row)
    session.flush()


def get_webhook(tenant_id: str, webhook_id: str, *, session: Session) -> WebhookRow | None:
    row = session.get(WebhookRow, webhook_id)
    return row if row is not None and row.tenant_id == tenant_id else None


def list_webhooks(tenant_id: str, *, session: Session) -> list[WebhookRow]:
    stmt = (
        select(WebhookRow)
        .where(WebhookRow.tenant_id == tenant_id)
        .order_by(WebhookRow.created_at, WebhookRow.id)
    )
    return list(session.scalars(stmt))


def any_webhook(*, session: Session) -> bool:
    return session.scalar(select(WebhookRow.id).limit(1)) is not None


def count_webhooks(tenant_id: str, *, session: Session) -> int:
    stmt = select(func.count()).select_from(WebhookRow).where(WebhookRow.tenant_id == tenant_id)
    return int(session.scalar(stmt) or 0)


def delete_webhook(tenant_id: str, webhook_id: str, *, session: Session) -> bool:
    """Delete the subscription with its deliveries and attempts (no more are sent)."""
    row = get_webhook(tenant_id, webhook_id, session=session)
    if row is None:
        return False
    ids = select(WebhookDeliveryRow.id).where(
        WebhookDeliveryRow.tenant_id == tenant_id, WebhookDeliveryRow.webhook_id == webhook_id
    )
    # Spelled out: SQLite enforces ON DELETE CASCADE only with its foreign keys pragma.
    session.execute(delete(WebhookAttemptRow).where(WebhookAttemptRow.delivery_id.in_(ids)))
    session.execute(
        delete(WebhookDeliveryRow).where(
            WebhookDeliveryRow.tenant_id == tenant_id, WebhookDeliveryRow.webhook_id == webhook_id
        )
    )
    session.delete(row)
    session.flush()
    return True


def subscribers(tenant_id: str, *, session: Session) -> list[tuple[str, list[str]]]:
    """(id, event types) of every subscription of the tenant (one small indexed read)."""
    stmt = select(WebhookRow.id, WebhookRow.event_types).where(WebhookRow.tenant_id == tenant_id)
    return [(row[0], list(row[1] or [])) for row in session.execute(stmt)]


def add_deliveries(values: Sequence[dict[str, Any]], *, session: Session) -> None:
    """Insert outbox rows (one executemany) in the caller's transaction."""
    if values:
        session.execute(WebhookDeliveryRow.__table__.insert(), list(values))


def claim_due(
    now: datetime, until: datetime, *, limit: int, session: Session
) -> list[WebhookDeliveryRow]:
    """Pending deliveries due by ``now``, oldest first, moved to ``until`` so that no other
    sender takes them meanwhile. PostgreSQL skips rows another sender holds locked."""
    stmt = (
        select(WebhookDeliveryRow)
        .where(WebhookDeliveryRow.state == "pending", WebhookDeliveryRow.next_attempt_at <= now)
        .order_by(WebhookDeliveryRow.next_attempt_at)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    for row in rows:
        row.next_attempt_at = until
    session.flush()
    return rows


def webhooks_by_id(ids: Sequence[str], *, session: Session) -> dict[str, WebhookRow]:
    if not ids:
        return {}
    stmt = select(WebhookRow).where(WebhookRow.id.in_(list(set(ids))))
    return {row.id: row for row in session.scalars(stmt)}


def update_delivery(delivery_id: str, values: dict[str, Any], *, session: Session) -> None:
    session.execute(
        update(WebhookDeliveryRow).where(WebhookDeliveryRow.id == delivery_id).values(**values)
    )


def add_attempt(row: WebhookAttemptRow, *, session: Session) -> None:
    session.add(row)


def deliveries_of(
    tenant_id: str, webhook_id: str, *, state: str | None, limit: int, session: Session
) -> list[WebhookDeliveryRow]:
    """The subscription's deliveries, newest first."""
    stmt = select(WebhookDeliveryRow).where(
        WebhookDeliveryRow.tenant_id == tenant_id, WebhookDeliveryRow.webhook_id == webhook_id
    )
    if state is not None:
        stmt = stmt.where(WebhookDeliveryRow.state == state)
    stmt = stmt.order_by(WebhookDeliveryRow.created_at.desc(), WebhookDeliveryRow.id).limit(limit)
    return list(session.scalars(stmt))


def attempts_of(
    tenant_id: str, delivery_ids: Sequence[str], *, session: Session
) -> dict[str, list[WebhookAttemptRow]]:
    out: dict[str, list[WebhookAttemptRow]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return out
    stmt = (
        select(WebhookAttemptRow)
        .where(
            WebhookAttemptRow.tenant_id == tenant_id,
            WebhookAttemptRow.delivery_id.in_(list(delivery_ids)),
        )
        .order_by(WebhookAttemptRow.pk)
    )
    for row in session.scalars(stmt):
        out[row.delivery_id].append(row)
    return out
