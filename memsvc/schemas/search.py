"""Search requests and results."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictStr

from memsvc.schemas.common import Strict
from memsvc.schemas.memories import MemoryFilter, MemoryPublic

__all__ = ["ContextTurn", "SearchRequest", "SearchResponse", "SearchResult"]


class SearchRequest(Strict):
    """Hybrid search: dense (faiss) and lexical (BM25), fused."""

    query: StrictStr = Field(description="What to look for; 1 to MEMSVC_MAX_TEXT_CHARS characters.")
    filters: MemoryFilter = Field(default_factory=MemoryFilter)
    top_k: int = Field(default=10, ge=1, description="At most MEMSVC_MAX_TOP_K.")
    threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Drop results whose fused score is below this."
    )
    fusion: Literal["rrf", "weighted"] | None = Field(
        default=None,
        description="How dense and lexical rankings combine; default: the server's "
        "MEMSVC_RETRIEVAL__FUSION (weighted).",
    )


class ContextTurn(BaseModel):
    """A turn of the same conversation shown with a message result so it reads on its own."""

    side: Literal["before", "after"] = Field(
        description="Where the turn goes: before the result (the question it answers, the "
        "statement that question is about) or after it (the answer to the question it asks, "
        "a question about it and its answer)."
    )
    id: str = Field(description="The turn's memory id (GET /v1/memories/{id} for the rest).")
    text: str
    snippet: str | None = Field(
        default=None,
        description="For a long turn, its sentences closest to the query "
        "(MEMSVC_RETRIEVAL__CONTEXT_WORDS); what a prompt should quote.",
    )
    occurred_at: datetime
    source_event_ids: list[str] = Field(description="Provenance: the events the turn states.")


class SearchResult(BaseModel):
    """A memory found, with its scores and provenance (``memory.source_event_ids``)."""

    memory: MemoryPublic
    score: float = Field(description="Fused score in [0, 1]; 1 = ranked first by every retriever.")
    dense_score: float | None = Field(description="Cosine similarity, if found by the dense index.")
    lexical_score: float | None = Field(description="BM25 score, if found by the lexical index.")
    graph_score: float | None = Field(
        default=None, description="Entity-graph score, if near the query's entities."
    )
    spread_score: float = Field(
        default=0.0,
        description="The part of ``score`` lent by neighbouring turns of the conversation "
        "(0 when none): a question's answer often sits in the turn after it.",
    )
    tier: Literal["long_term", "short_term"] = "long_term"
    snippet: str | None = Field(
        default=None,
        description="For a long memory, its sentences closest to the query (cuts marked …); "
        "what a prompt should quote. None: the whole text is short enough.",
    )
    context: list[ContextTurn] = Field(
        default_factory=list,
        description="For a conversation turn: the turns of its exchange, in conversation order "
        "(MEMSVC_RETRIEVAL__EXCHANGE_CONTEXT); each carries its own provenance.",
    )

    def shown_event_ids(self) -> list[str]:
        """The events this result puts in a prompt: its memory's, then its context turns'."""
        return [
            *self.memory.source_event_ids,
            *(e for t in self.context for e in t.source_event_ids),
        ]


class SearchResponse(BaseModel):
    data: list[SearchResult]
    count: int
