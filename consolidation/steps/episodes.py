"""Step *episodes*: a dated, extractive summary per topic segment of a batch.

Segments are working memory's own (``memsvc.tiers.working.segment``: embedding turns, pauses,
size). A segment with enough events gets an ``episode`` memory quoting its most telling
statements; its ``source_event_ids`` are exactly the events it quotes, and the facts extracted
from the segment point at it (``episode_id``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from consolidation.steps.extract import Batch
from memsvc.extraction import Candidate
from memsvc.extraction.rules import split_sentences
from memsvc.lifecycle.episodes import Line, summarise
from memsvc.lifecycle.merge import content_words
from memsvc.schemas import MemoryCreate
from memsvc.service.deps import ServiceDeps
from memsvc.service.events import pieces_of
from memsvc.service.facts.merge import Outcome
from memsvc.service.memories import insert_memories
from memsvc.tiers.working import Segment, segment
from stores.models import MemoryRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["EpisodeDraft", "draft_episodes", "write_episodes"]


@dataclass
class EpisodeDraft:
    id: str
    text: str
    event_ids: list[str]  # the events it quotes (provenance)
    segment_event_ids: set[str]  # every event of the segment (its facts link to it)
    start: Any
    end: Any
    speakers: list[str]


def _lines(batch: Batch, event_ids: list[str], candidates: list[Candidate]) -> list[Line]:
    by_event: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_event.setdefault(c.event_ids[0], []).append(c)
    events = {e.id: e for e in batch.kept}
    lines = []
    for event_id in event_ids:
        event = events[event_id]
        speaker = event.speaker or event.role
        if by_event.get(event_id):
            lines += [Line(event_id, speaker, c.text, event.event_time) for c in by_event[event_id]]
            continue
        for sentence in split_sentences(event.content):
            if not sentence.endswith("?") and len(content_words(sentence)) >= 3:
                lines.append(Line(event_id, speaker, f"{speaker}: {sentence}", event.event_time))
    return lines


def _groups(segments: list[Segment], min_events: int) -> list[list[Segment]]:
    """Adjacent segments joined until each group has ``min_events`` events (short topic
    segments make no episode on their own); a short tail joins the group before it."""
    groups: list[list[Segment]] = []
    current: list[Segment] = []
    for seg in segments:
        current.append(seg)
        if sum(len(s.event_ids) for s in current) >= min_events:
            groups.append(current)
            current = []
    if current and groups:
        groups[-1].extend(current)
    elif current and sum(len(s.event_ids) for s in current) >= min_events:
        groups.append(current)
    return groups


def draft_episodes(
    deps: ServiceDeps, batch: Batch, candidates: list[Candidate]
) -> list[EpisodeDraft]:
    """One draft per topic segment (or run of short ones) with ``episode_min_events`` events."""
    config = deps.settings.consolidation
    pieces = pieces_of(sorted(batch.kept, key=lambda e: (e.event_time, e.pk)), deps)
    drafts = []
    for group in _groups(segment(pieces, deps.settings.working), config.episode_min_events):
        event_ids = list(dict.fromkeys(e for seg in group for e in seg.event_ids))
        lines = _lines(batch, event_ids, candidates)
        if not lines:
            continue
        text, quoted = summarise(lines, config.episode_max_sentences)
        drafts.append(
            EpisodeDraft(
                id=str(uuid.uuid4()),
                text=text,
                event_ids=list(dict.fromkeys(line.event_id for line in quoted)),
                segment_event_ids=set(event_ids),
                start=group[0].start,
                end=group[-1].end,
                speakers=list(dict.fromkeys(line.speaker for line in lines)),
            )
        )
    return drafts


def write_episodes(
    session: Session,
    deps: ServiceDeps,
    scope: dict[str, Any],
    drafts: list[EpisodeDraft],
    vectors: np.ndarray,
    outcomes: list[Outcome],
    *,
    actor: str,
) -> list[MemoryRow]:
    """Insert the episodes and point the segment's newly added facts at them."""
    if not drafts:
        return []
    items = [
        MemoryCreate(
            text=d.text,
            kind="episode",
            user_id=scope["user_id"],
            agent_id=scope["agent_id"],
            session_id=scope["session_id"],
            metadata={
                "start": d.start.isoformat(),
                "end": d.end.isoformat(),
                "speakers": ", ".join(d.speakers),
                "events": len(d.segment_event_ids),
            },
            occurred_at=d.start,
            source_event_ids=d.event_ids,
        )
        for d in drafts
    ]
    written = insert_memories(session, deps, scope["tenant_id"], items, vectors, actor=actor)
    rows = []
    for draft, (row, _) in zip(drafts, written, strict=True):
        rows.append(row)
        for outcome in outcomes:
            new = outcome.row if outcome.op == "ADD" else None
            if new is not None and outcome.candidate.event_ids[0] in draft.segment_event_ids:
                new.episode_id = row.id
    return rows
