"""Event ingestion: validate, gate, embed once, commit, then feed working memory."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from memsvc.errors import ConflictError, InvalidRequestError
from memsvc.observability import metrics
from memsvc.schemas import EventBatch, EventCreate, EventFilter, EventPublic, EventsAdded, Page
from memsvc.service.deps import ServiceDeps
from memsvc.service.facts.on_write import extract_new_facts, write_new_facts
from memsvc.service.idempotency import IdempotentRequest, after_commit, record_reply
from memsvc.service.validation import check_metadata, decode_cursor, encode_cursor
from memsvc.tiers.sensory import gate
from stores import events as store
from stores import memories as memory_store
from stores.events import EventQuery
from stores.models import EventRow, SessionRow, utcnow
from stores.short_term import Piece

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["event_public", "ingest_events", "list_events", "pieces_of"]

log = logging.getLogger(__name__)


def event_public(row: EventRow) -> EventPublic:
    return EventPublic(
        id=row.id,
        session_id=row.session_id,
        user_id=row.user_id,
        agent_id=row.agent_id,
        role=row.role,
        speaker=row.speaker,
        content=row.content,
        event_time=row.event_time,
        metadata=row.metadata_ or {},
        decision=row.decision,
        pieces=list(row.pieces or []),
        created_at=row.created_at,
        promoted_at=row.promoted_at,
    )


def piece_text(speaker: str | None, text: str) -> str:
    """What is embedded and remembered for a piece: the speaker's name is part of the content."""
    return f"{speaker}: {text}" if speaker else text


def pieces_of(rows: Sequence[EventRow], deps: ServiceDeps) -> list[Piece]:
    """The working-memory pieces of kept events, rebuilt from their rows (vectors included),
    in the rows' order. Tokens are counted in one tokenizer call for all of them."""
    found: list[tuple[EventRow, int, str, np.ndarray]] = []
    for row in rows:
        if row.decision != "kept" or not row.pieces:
            continue
        vectors = np.frombuffer(row.embeddings or b"", dtype=np.float32)
        vectors = vectors.reshape(len(row.pieces), -1)
        for n, text in enumerate(row.pieces):
            found.append((row, n, piece_text(row.speaker, text), vectors[n]))
    tokens = deps.embedder.count_tokens_many([text for _, _, text, _ in found])
    return [
        Piece(
            id=f"{row.pk:012d}.{n}",
            event_id=row.id,
            event_pk=row.pk,
            session_id=row.session_id,
            user_id=row.user_id,
            agent_id=row.agent_id,
            role=row.role,
            speaker=row.speaker,
            text=text,
            event_time=row.event_time,
            vector=vector,
            tokens=count,
        )
        for (row, n, text, vector), count in zip(found, tokens, strict=True)
    ]


def _resolve(batch: EventBatch) -> list[EventCreate]:
    """Events with the batch's scope ids filled in; every event needs a session."""
    if not batch.events:
        raise InvalidRequestError("events must not be empty", field="events")
    resolved = []
    for n, event in enumerate(batch.events):
        event = event.model_copy(
            update={
                "user_id": event.user_id or batch.user_id,
                "agent_id": event.agent_id or batch.agent_id,
                "session_id": event.session_id or batch.session_id,
            }
        )
        if event.session_id is None:
            raise InvalidRequestError(
                f"events[{n}].session_id is required (on the event or the batch)",
                field=f"events[{n}].session_id",
            )
        resolved.append(event)
    return resolved


def _check(deps: ServiceDeps, events: list[EventCreate]) -> None:
    settings = deps.settings
    if len(events) > settings.max_batch_size:
        raise InvalidRequestError(
            f"{len(events)} events; the limit is {settings.max_batch_size}", field="events"
        )
    latest = utcnow() + timedelta(seconds=settings.future_tolerance_seconds)
    scopes: dict[str, tuple[str | None, str | None]] = {}
    for n, event in enumerate(events):
        field = f"events[{n}]"
        if not event.content.strip():
            raise InvalidRequestError(
                f"{field}.content must not be empty", field=f"{field}.content"
            )
        if len(event.content) > settings.max_event_chars:
            raise InvalidRequestError(
                f"{field}.content has {len(event.content)} characters; the limit is "
                f"{settings.max_event_chars}",
                field=f"{field}.content",
            )
        if event.event_time is not None and event.event_time > latest:
            raise InvalidRequestError(
                f"{field}.event_time {event.event_time.isoformat()} is in the future "
                f"(tolerance {settings.future_tolerance_seconds:g}s)",
                field=f"{field}.event_time",
            )
        check_metadata(settings, event.metadata, f"{field}.metadata")
        scope = (event.user_id, event.agent_id)
        if scopes.setdefault(event.session_id, scope) != scope:
            raise InvalidRequestError(
                f"{field}: session {event.session_id} has two different user/agent ids here",
                field=f"{field}.session_id",
            )


def _check_sessions_scope(session: Session, tenant_id: str, events: list[EventCreate]) -> None:
    # _check made every event of one session agree on its scope: one lookup per session.
    rows = {
        session_id: store.get_session(tenant_id, session_id, session=session)
        for session_id in {e.session_id for e in events}
    }
    for n, event in enumerate(events):
        row = rows[event.session_id]
        if row is not None and (row.user_id, row.agent_id) != (event.user_id, event.agent_id):
            raise ConflictError(
                f"session {event.session_id} belongs to user {row.user_id!r}, agent "
                f"{row.agent_id!r}; events[{n}] says user {event.user_id!r}, agent "
                f"{event.agent_id!r}",
                field=f"events[{n}].session_id",
            )


def ingest_events(
    deps: ServiceDeps,
    tenant_id: str,
    batch: EventBatch,
    *,
    idempotency: IdempotentRequest | None = None,
    actor: str = "system:events",
) -> EventsAdded:
    """Commit a batch of events to the log, then put their kept pieces into working memory.

    Each kept piece is embedded exactly once, here; the vector is stored on the event and
    reused by working memory and by promotion to long-term memory. With an idempotency key,
    the reply is stored in the same transaction as the events. With ``batch.infer``, the
    facts of the new events are extracted first and written in that same transaction
    (:mod:`memsvc.service.facts.on_write`).
    """
    events = _resolve(batch)
    _check(deps, events)
    decisions = [gate(e.content, deps.settings.sensory) for e in events]
    texts = [
        piece_text(e.speaker, p) for e, d in zip(events, decisions, strict=True) for p in d.pieces
    ]
    vectors = deps.embedder.embed(texts) if texts else np.zeros((0, deps.embedder.dim), np.float32)
    now = utcnow()
    rows: list[EventRow] = []
    offset = 0
    for event, decision in zip(events, decisions, strict=True):
        count = len(decision.pieces)
        rows.append(
            EventRow(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                user_id=event.user_id,
                agent_id=event.agent_id,
                session_id=event.session_id,
                role=event.role,
                speaker=event.speaker,
                content=event.content,
                event_time=event.event_time or now,
                metadata_=event.metadata,
                decision=decision.decision,
                pieces=list(decision.pieces),
                embeddings=vectors[offset : offset + count].tobytes() if count else None,
                created_at=now,
            )
        )
        offset += count
    extracted = extract_new_facts(deps, tenant_id, rows) if batch.infer else None
    if extracted is not None:
        for row in rows:
            row.facts_extracted_at = now  # consolidation leaves their facts alone
    with deps.sessions.begin() as session:
        if extracted is not None:
            # The counter lock first, as consolidation takes it: writers of facts serialise
            # on it, and in the same order (counter, then sessions) on both databases.
            memory_store.reserve_revs(1, session=session)
        store.ensure_sessions(
            [
                SessionRow(
                    tenant_id=tenant_id,
                    id=e.session_id,
                    user_id=e.user_id,
                    agent_id=e.agent_id,
                    created_at=now,
                )
                for e in {e.session_id: e for e in events}.values()
            ],
            session=session,
        )
        # After the insert-if-missing: a session created concurrently by another writer is
        # visible now, so a scope clash with it is caught too.
        _check_sessions_scope(session, tenant_id, events)
        store.add_events(rows, session=session)
        written = [event_public(r) for r in rows]
        for session_id in {r.session_id for r in rows}:
            mine = [r for r in rows if r.session_id == session_id]
            store.touch_session(
                tenant_id,
                session_id,
                events=len(mine),
                kept=sum(r.decision == "kept" for r in mine),
                last_event_at=max(r.event_time for r in mine),
                now=now,
                session=session,
            )
        facts = None
        if extracted is not None:
            facts = write_new_facts(session, deps, extracted, actor=actor)
        reply = EventsAdded(data=written, count=len(written), facts=facts)
        if idempotency is not None:
            record_reply(session, deps, idempotency, reply)
    after_commit(deps, idempotency)
    if deps.settings.metrics.enabled:
        metrics.EVENTS_WRITTEN.inc(len(rows))
    # Durable from here on. Working memory is derived: if this fails, it is rebuilt from SQL.
    pieces = pieces_of(rows, deps)
    try:
        deps.short_term.add(tenant_id, pieces)
    except Exception:
        deps.short_term_lost.set()  # the maintenance tick refills it from the event log
        log.exception("working memory unavailable; %d pieces will be rebuilt later", len(pieces))
    return reply


def list_events(
    deps: ServiceDeps,
    tenant_id: str,
    filters: EventFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[EventPublic]:
    """Events in the order they were written; ``next_cursor`` continues the listing."""
    if not 1 <= limit <= 1000:
        raise InvalidRequestError("limit must be between 1 and 1000", field="limit")
    after_pk = None
    if cursor:
        after_pk = decode_cursor(cursor, {"event_pk": int})["event_pk"]
    query = EventQuery(tenant_id=tenant_id, **filters.model_dump())
    with deps.sessions() as session:
        rows = store.events_page(query, limit=limit + 1, after_pk=after_pk, session=session)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"event_pk": rows[-1].pk}) if more else None
    return Page(data=[event_public(r) for r in rows], count=len(rows), next_cursor=next_cursor)
