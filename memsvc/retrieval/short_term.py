"""Searching working memory: the pieces of the sessions a query is scoped to."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from functools import lru_cache

import numpy as np

from memsvc.retrieval.bm25 import bm25_scores
from memsvc.retrieval.text import content_hash, tokenize
from memsvc.schemas import MemoryFilter, MemoryPublic
from stores.short_term import Piece, ShortTermStore

__all__ = ["as_memory", "scoped_pieces", "score_pieces"]


def scoped_pieces(store: ShortTermStore, tenant_id: str, filters: MemoryFilter) -> list[Piece]:
    """Pieces a search with these filters may see: a session's, or all of a user's sessions.

    Without a user or session id, working memory is not searched (it is per conversation).
    Filters working memory cannot answer (metadata, other kinds) exclude it.
    """
    kinds = filters.kind if isinstance(filters.kind, list) else [filters.kind]
    if filters.metadata or (filters.kind is not None and "message" not in kinds):
        return []
    if filters.session_id is not None:
        pieces = store.pieces(tenant_id, filters.session_id)
    elif filters.user_id is not None:
        pieces = [
            p
            for s in store.sessions_of_user(tenant_id, filters.user_id)
            for p in store.pieces(tenant_id, s)
        ]
    else:
        return []

    def visible(p: Piece) -> bool:
        return (
            (filters.user_id is None or p.user_id == filters.user_id)
            and (filters.agent_id is None or p.agent_id == filters.agent_id)
            and _in_range(p.event_time, filters.occurred_after, filters.occurred_before)
            and _in_range(p.event_time, filters.created_after, filters.created_before)
        )

    return [p for p in pieces if visible(p)]


def _in_range(value: datetime, after: datetime | None, before: datetime | None) -> bool:
    return (after is None or value >= after) and (before is None or value < before)


def score_pieces(
    pieces: list[Piece], query_vector: np.ndarray, query_tokens: list[str], depth: int
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Dense and BM25 rankings of the pieces (keys: piece ids), best first."""
    if not pieces:
        return [], []
    matrix = np.stack([p.vector for p in pieces])  # [n, dim]
    cosine = matrix @ query_vector
    order = np.argsort(-cosine)[:depth]
    dense = [(pieces[i].id, float(cosine[i])) for i in order]
    lexical_scores = bm25_scores([_terms(p.text) for p in pieces], query_tokens)
    hits = np.flatnonzero(lexical_scores > 0)
    hits = hits[np.argsort(-lexical_scores[hits], kind="stable")][:depth]
    lexical = [(pieces[i].id, float(lexical_scores[i])) for i in hits.tolist()]
    return dense, lexical


@lru_cache(maxsize=8_192)
def _terms(text: str) -> tuple[Counter[str], int]:
    """A piece's term counts and length, tokenized once: every search scores every piece of
    the sessions in scope, and pieces never change (callers must not mutate the Counter).
    Bounded by entries (a few KB each): enough for the working memory of the sessions being
    searched now, small beside the indexes."""
    tokens = tokenize(text)
    return Counter(tokens), len(tokens)


def as_memory(piece: Piece) -> MemoryPublic:
    """A working-memory piece shaped like a memory (id ``st:<piece id>``, kind ``message``)."""
    metadata = {"speaker": piece.speaker, "role": piece.role, "session_id": piece.session_id}
    return MemoryPublic(
        id=f"st:{piece.id}",
        text=piece.text,
        kind="message",
        user_id=piece.user_id,
        agent_id=piece.agent_id,
        session_id=piece.session_id,
        metadata={k: v for k, v in metadata.items() if v is not None},
        importance=0.5,
        created_at=piece.event_time,
        updated_at=piece.event_time,
        occurred_at=piece.event_time,
        valid_from=None,
        valid_to=None,
        content_hash=content_hash(piece.text),
        source_event_ids=[piece.event_id],
    )
