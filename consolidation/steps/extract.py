"""Step *extract*: the next batch of a session's events, and the candidates they hold.

A batch is the events after the session's watermark (``extracted_upto``), in arrival order,
up to the first kept event not yet promoted out of working memory: consolidation follows
promotion, and an event still being talked about is left for later.
"""

from __future__ import annotations

from dataclasses import dataclass

from memsvc.extraction import NO_GUIDE, Candidate, Extractor, Guide, SourceEvent
from memsvc.service.deps import ServiceDeps
from memsvc.service.extraction_config import guide_for
from stores import events as store
from stores.models import EventRow

__all__ = ["Batch", "extract", "guide_of", "load_batch"]


@dataclass
class Batch:
    tenant_id: str
    session_id: str
    user_id: str | None
    agent_id: str | None
    watermark: int  # extracted_upto when read
    upto: int  # pk of the last event in the batch
    events: list[EventRow]  # kept and dropped, arrival order

    @property
    def kept(self) -> list[EventRow]:
        return [e for e in self.events if e.decision == "kept"]


def load_batch(deps: ServiceDeps, tenant_id: str, session_id: str, *, limit: int) -> Batch | None:
    """The next batch to consolidate, or None when the session is caught up."""
    with deps.sessions() as session:
        row = store.get_session(tenant_id, session_id, session=session)
        if row is None:
            return None
        events = store.events_after(
            tenant_id, session_id, row.extracted_upto, limit=limit, session=session
        )
    ready: list[EventRow] = []
    for event in events:
        if event.decision == "kept" and event.promoted_at is None:
            break
        ready.append(event)
    if not ready:
        return None
    return Batch(
        tenant_id=tenant_id,
        session_id=session_id,
        user_id=row.user_id,
        agent_id=row.agent_id,
        watermark=row.extracted_upto,
        upto=ready[-1].pk,
        events=ready,
    )


def source_events(batch: Batch) -> list[SourceEvent]:
    """The kept events whose facts are still to extract: those written with ``infer=True``
    had theirs extracted in their own transaction (``facts_extracted_at``)."""
    return [
        SourceEvent(id=e.id, speaker=e.speaker, role=e.role, text=e.content, time=e.event_time)
        for e in sorted(batch.kept, key=lambda e: (e.event_time, e.pk))
        if e.facts_extracted_at is None
    ]


def guide_of(deps: ServiceDeps, batch: Batch) -> Guide:
    """The extraction configuration of the batch's scope (instructions, categories)."""
    with deps.sessions() as session:
        return guide_for(session, batch.tenant_id, batch.user_id, batch.agent_id)


def extract(extractor: Extractor, batch: Batch, guide: Guide = NO_GUIDE) -> list[Candidate]:
    """Candidates of the batch's kept events not extracted on write, in the order said."""
    events = source_events(batch)
    return extractor.extract(events, guide) if events else []
