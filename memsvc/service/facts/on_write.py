"""Facts on write (``infer=True``): the new turns' facts, extracted before the events'
transaction and written in it.

Extraction (an LLM call, perhaps) and embedding happen first, outside any transaction: an
endpoint that refuses (4xx) or stays away (5xx, timeout) fails the request before anything is
written. Then the events, the facts (merge, invalidate, graph), the events' mark
(``facts_extracted_at``) and the idempotency reply commit together, so a retry with the same
key replays the reply, facts included, and extracts nothing again; consolidation later skips
the marked events' facts (it still builds episodes from them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from memsvc.errors import ServerError, ServiceUnavailableError
from memsvc.extraction import (
    Candidate,
    ExtractionRejected,
    ExtractionUnavailable,
    SourceEvent,
    build_extractor,
)
from memsvc.graph import FactGraph, read_graph
from memsvc.schemas import MemoryWriteResult
from memsvc.service.deps import ServiceDeps
from memsvc.service.extraction_config import guide_for
from memsvc.service.facts.graph import link_graph
from memsvc.service.facts.invalidate import invalidate_contradicted
from memsvc.service.facts.merge import Outcome, merge_candidates
from memsvc.service.memories import to_public
from stores.models import EventRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["ExtractedFacts", "extract_new_facts", "write_new_facts"]

# What a write result says for each merge outcome: a MERGE only grew a known fact's
# provenance, which for the caller is "already stored".
_EVENT = {"ADD": "ADD", "UPDATE": "UPDATE", "MERGE": "NOOP", "NOOP": "NOOP"}
RETRY_AFTER_SECONDS = 30.0


@dataclass
class _Group:
    """One session's new facts: its scope, candidates, their graphs and vectors."""

    scope: dict[str, Any]
    candidates: list[Candidate]
    graphs: list[FactGraph]
    vectors: np.ndarray


@dataclass
class ExtractedFacts:
    groups: list[_Group]


def _source(row: EventRow) -> SourceEvent:
    return SourceEvent(
        id=row.id, speaker=row.speaker, role=row.role, text=row.content, time=row.event_time
    )


def extract_new_facts(deps: ServiceDeps, tenant_id: str, rows: list[EventRow]) -> ExtractedFacts:
    """Candidates of the kept events among ``rows``, per session, with the scope's guide.

    Raises a 502 ``extraction_rejected`` when the LLM endpoint refuses the request (its
    message included) and a 503 ``extraction_unavailable`` when it fails or times out on
    every attempt: the caller has written nothing yet.
    """
    by_session: dict[str, list[EventRow]] = {}
    for row in rows:
        if row.decision == "kept":
            by_session.setdefault(row.session_id, []).append(row)
    if not by_session:
        return ExtractedFacts([])
    with deps.sessions() as session:
        guides = {
            sid: guide_for(session, tenant_id, mine[0].user_id, mine[0].agent_id)
            for sid, mine in by_session.items()
        }
    extractor = build_extractor(deps.settings)
    found: list[tuple[dict[str, Any], list[Candidate]]] = []
    try:
        for sid, mine in by_session.items():
            ordered = sorted(mine, key=lambda r: r.event_time)
            candidates = extractor.extract([_source(r) for r in ordered], guides[sid])
            scope = {
                "tenant_id": tenant_id,
                "user_id": mine[0].user_id,
                "agent_id": mine[0].agent_id,
                "session_id": sid,
            }
            found.append((scope, candidates))
    except ExtractionRejected as exc:
        raise ServerError(
            exc.message, status_code=502, code="extraction_rejected", field="infer"
        ) from exc
    except ExtractionUnavailable as exc:
        raise ServiceUnavailableError(
            exc.message, code="extraction_unavailable", retry_after=RETRY_AFTER_SECONDS
        ) from exc
    finally:
        extractor.close()
    texts = [c.text for _, candidates in found for c in candidates]
    vectors = deps.embedder.embed(texts) if texts else np.zeros((0, deps.embedder.dim), np.float32)
    groups, offset = [], 0
    for scope, candidates in found:
        count = len(candidates)
        groups.append(
            _Group(
                scope,
                candidates,
                [read_graph(c) for c in candidates],
                vectors[offset : offset + count],
            )
        )
        offset += count
    return ExtractedFacts(groups)


def write_new_facts(
    session: Session, deps: ServiceDeps, extracted: ExtractedFacts, *, actor: str
) -> list[MemoryWriteResult]:
    """Merge, invalidate and link the extracted facts inside the caller's transaction (which
    holds the memory counter lock); the facts as written, each with its decision."""
    outcomes: list[Outcome] = []
    for group in extracted.groups:
        if not group.candidates:
            continue
        mine = merge_candidates(
            session, deps, group.scope, group.candidates, group.graphs, group.vectors, actor=actor
        )
        invalidate_contradicted(session, mine, actor=actor)
        link_graph(session, group.scope, mine, [])
        outcomes += mine
    results: dict[str, MemoryWriteResult] = {}
    for outcome in outcomes:
        if outcome.row is None:  # a duplicate of an earlier fact of this batch
            continue
        if outcome.row.id not in results:
            public = to_public(outcome.row).model_dump()
            results[outcome.row.id] = MemoryWriteResult(**public, event=_EVENT[outcome.op])
    return list(results.values())
