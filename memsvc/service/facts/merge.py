"""Merge: each candidate becomes an ADD, an UPDATE of a better wording, or a NOOP.

The decision is ``memsvc.lifecycle.merge.decide``; this step finds what to compare with (the
user's facts sharing the candidate's hash, slot or entities) and writes the outcome with its
history: ADD rows, UPDATE (new wording, both provenances), MERGE (provenance added to a
known fact, which also counts as a repetition that reinforces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from memsvc.extraction import CANDIDATE_KINDS, Candidate
from memsvc.graph import FactGraph
from memsvc.lifecycle.merge import Decision, Known, decide
from memsvc.retrieval.text import content_hash
from memsvc.schemas import MemoryCreate
from memsvc.service.deps import ServiceDeps
from memsvc.service.memories import history_entry, insert_memories, record_history, snapshot
from stores import graph as graph_store
from stores import memories as store
from stores.models import MemoryRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Outcome", "load_known", "merge_candidates"]

_NEIGHBOURS = 200  # facts sharing entities compared per batch


@dataclass
class Outcome:
    candidate: Candidate
    graph: FactGraph
    op: str  # ADD, UPDATE, MERGE, NOOP
    row: MemoryRow | None = None
    contradicts: list[MemoryRow] = field(default_factory=list)


def _known(row: MemoryRow) -> Known:
    meta = row.metadata_ or {}
    return Known(
        pk=row.pk,
        text=row.text,
        kind=row.kind,
        content_hash=row.content_hash,
        vector=np.frombuffer(row.embedding or b"", dtype=np.float32),
        slot=row.slot,
        value=meta.get("value"),
        subject=meta.get("subject"),
        valid_from=row.valid_from,
        valid_to=row.valid_to,
    )


def load_known(
    session: Session,
    tenant_id: str,
    user_id: str | None,
    candidates: list[Candidate],
    graphs: list[FactGraph],
) -> dict[int, MemoryRow]:
    """The user's facts a batch could duplicate or contradict, by pk."""
    rows: dict[int, MemoryRow] = {}
    hashes = [content_hash(c.text) for c in candidates]
    for row in store.find_live_by_hash(tenant_id, hashes, session=session):
        rows[row.pk] = row
    slots = [c.slot for c in candidates if c.slot]
    for row in store.open_slot_facts(tenant_id, user_id, slots, session=session):
        rows[row.pk] = row
    keys = {k for g in graphs for k in g.entities}
    entity_pks = graph_store.entity_pks_by_keys(tenant_id, user_id, keys, session=session)
    for row, _ in graph_store.memories_sharing_entities(
        tenant_id, entity_pks, kinds=CANDIDATE_KINDS, limit=_NEIGHBOURS, session=session
    ):
        rows[row.pk] = row
    return {
        pk: r
        for pk, r in rows.items()
        if r.user_id == user_id and r.kind in CANDIDATE_KINDS and r.deleted_at is None
    }


def _item(candidate: Candidate, scope: dict[str, Any]) -> MemoryCreate:
    metadata: dict[str, Any] = {"subject": candidate.subject, "extractor": candidate.extractor}
    if candidate.slot:
        metadata.update(attribute=candidate.slot.split("|", 1)[1], value=candidate.value)
    if candidate.categories:  # the project's categories (extraction configuration)
        metadata["categories"] = list(candidate.categories)
    return MemoryCreate(
        text=candidate.text,
        kind=candidate.kind,  # type: ignore[arg-type]
        metadata=metadata,
        occurred_at=candidate.occurred_at,
        valid_from=candidate.valid_from,
        source_event_ids=list(candidate.event_ids),
        **scope,
    )


def _merge_into(
    row: MemoryRow, candidate: Candidate, vector: np.ndarray, reword: bool, actor: str, rev: int
) -> Any:
    """Add the candidate's provenance to ``row`` (and its wording when ``reword``)."""
    sources = list(dict.fromkeys([*(row.source_event_ids or []), *candidate.event_ids]))
    if sources == list(row.source_event_ids or []) and not reword:
        return None  # the same statement from the same events: nothing to do
    before = snapshot(row)
    now = utcnow()
    row.source_event_ids = sources
    if reword:
        row.text = candidate.text
        row.content_hash = content_hash(candidate.text)
        row.embedding = np.asarray(vector, dtype=np.float32).tobytes()
        row.sentence_vectors = None  # they were the old wording's
        row.rev = rev
    row.access_count = (row.access_count or 0) + 1  # a repetition reinforces it
    row.last_accessed_at = row.updated_at = now
    op = "UPDATE" if reword else "MERGE"
    return history_entry(row.tenant_id, row.id, op, before, snapshot(row), actor)


def merge_candidates(
    session: Session,
    deps: ServiceDeps,
    scope: dict[str, Any],
    candidates: list[Candidate],
    graphs: list[FactGraph],
    vectors: np.ndarray,
    *,
    actor: str,
) -> list[Outcome]:
    """Decide and write every candidate, in order (later ones see earlier ones)."""
    tenant_id, user_id = scope["tenant_id"], scope["user_id"]
    rows = load_known(session, tenant_id, user_id, candidates, graphs)
    known = {pk: _known(r) for pk, r in rows.items()}
    rev = store.reserve_revs(1, session=session)
    threshold = deps.settings.consolidation.merge_similarity
    outcomes: list[Outcome] = []
    adds: list[tuple[Outcome, int]] = []
    history = []
    for n, (candidate, graph) in enumerate(zip(candidates, graphs, strict=True)):
        pool = list(known.values()) + [_pending(o, vectors[i]) for o, i in adds]
        decision = decide(
            text=candidate.text,
            subject=candidate.subject,
            slot=candidate.slot,
            value=candidate.value,
            vector=vectors[n],
            known=pool,
            threshold=threshold,
        )
        outcome = _apply(decision, candidate, graph, rows, adds, n, vectors[n], actor, rev, history)
        outcomes.append(outcome)
    _insert_adds(session, deps, scope, adds, vectors, actor)
    record_history(session, [h for h in history if h is not None])
    return outcomes


def _pending(outcome: Outcome, vector: np.ndarray) -> Known:
    c = outcome.candidate
    return Known(
        pk=-id(outcome),  # not written yet; merges into it resolve through the outcome
        text=c.text,
        kind=c.kind,
        content_hash=content_hash(c.text),
        vector=vector,
        slot=c.slot,
        value=c.value,
        subject=c.subject,
        valid_from=c.valid_from,
        valid_to=None,
    )


def _apply(
    decision: Decision,
    candidate: Candidate,
    graph: FactGraph,
    rows: dict[int, MemoryRow],
    adds: list[tuple[Outcome, int]],
    n: int,
    vector: np.ndarray,
    actor: str,
    rev: int,
    history: list[Any],
) -> Outcome:
    contradicts = [rows[k.pk] for k in decision.contradicts if k.pk in rows]
    if decision.op == "ADD":
        outcome = Outcome(candidate, graph, "ADD", contradicts=contradicts)
        adds.append((outcome, n))
        return outcome
    target = decision.target
    assert target is not None, "UPDATE and NOOP name the memory they concern"
    if target.pk < 0:  # a duplicate inside this batch: provenance joins the pending ADD
        first = next(o for o, _ in adds if -id(o) == target.pk)
        ids = dict.fromkeys([*first.candidate.event_ids, *candidate.event_ids])
        first.candidate.event_ids = tuple(ids)
        return Outcome(candidate, graph, "NOOP")
    row = rows[target.pk]
    entry = _merge_into(row, candidate, vector, decision.op == "UPDATE", actor, rev)
    history.append(entry)
    op = decision.op if entry is not None else "NOOP"
    return Outcome(candidate, graph, "MERGE" if op == "NOOP" and entry else op, row=row)


def _insert_adds(
    session: Session,
    deps: ServiceDeps,
    scope: dict[str, Any],
    adds: list[tuple[Outcome, int]],
    vectors: np.ndarray,
    actor: str,
) -> None:
    if not adds:
        return
    items = [
        _item(o.candidate, {k: scope[k] for k in ("user_id", "agent_id", "session_id")})
        for o, _ in adds
    ]
    written = insert_memories(
        session, deps, scope["tenant_id"], items, vectors[[n for _, n in adds]], actor=actor
    )
    for (outcome, _), (row, event) in zip(adds, written, strict=True):
        outcome.row = row
        outcome.op = event  # NOOP when the exact row already exists (a replayed batch)
        row.slot = outcome.candidate.slot
