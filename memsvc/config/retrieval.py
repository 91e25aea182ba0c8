"""Every ranking knob of search, in one model (``MEMSVC_RETRIEVAL__*``).

The defaults were chosen on LoCoMo dev (see the search section of docs/architecture.md) and are
one setting for all conversations; named variants live in :mod:`memsvc.retrieval.presets`. The
stages that read each group of fields are named in the comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["NeighbourWeights", "RetrievalConfig", "Retriever"]


class Retriever(StrEnum):
    """The ranked lists fused by search, in fusion order."""

    DENSE = "dense"  # faiss: the better of a memory's whole-text and best-sentence cosine
    LEXICAL = "lexical"  # BM25 over stemmed tokens
    GRAPH = "graph"  # personalised PageRank from the query's entities (one user's search)


@dataclass(frozen=True)
class NeighbourWeights:
    """Share of a turn's score given to the turn after it (more when it asked a question) and
    to the turn before it. Zeros turn spreading off."""

    after: float = 0.1
    after_question: float = 0.5
    before: float = 0.2
    # To the turn after next when the next one asks a question: "I finished my screenplay" /
    # "What is it about?" / "A mix of drama and romance" (the answer is two turns on).
    answer: float = 0.0
    # The other way: to the turn before last when the previous one asks a question, so a
    # matching answer brings up the statement it answers about (a question's evidence is
    # often both).
    statement: float = 0.0


class RetrievalConfig(BaseModel):
    """How search ranks: candidates, retrievers, fusion, spreading, repeats, results."""

    # -- candidates: how deep each retriever's list is ---------------------------------------
    # Candidates each retriever contributes before fusion: max(min_depth, depth_factor *
    # top_k). Min-max normalised scores need a deep enough list for the minimum to mean "not
    # relevant" (30-deep lists lost 2 points of ev@10).
    min_depth: int = Field(default=100, ge=10, le=2000)
    depth_factor: int = Field(default=3, ge=1, le=100)

    # -- retrieve: each retriever's weight in fusion (0 turns it off, skipping its work) -----
    dense_weight: float = Field(default=1.0, ge=0.0)
    lexical_weight: float = Field(default=1.0, ge=0.0)
    # The graph list joins only for one user's search whose query names entities of that
    # user's graph (an empty graph list is left out, so scores keep their meaning).
    graph_weight: float = Field(default=0.5, ge=0.0)
    # Entities mentioned by more than this share of the user's memories are hubs and do not
    # seed the walk (the user themself says nothing about a query).
    graph_hub_share: float = Field(default=0.2, gt=0.0, le=1.0)
    # Only the best few graph hits join the fusion: past its head the graph ranks by hubs and
    # adds noise (a full-length list lowered LoCoMo ev@10 from .601 to .561).
    graph_list_length: int = Field(default=10, ge=1, le=1000)
    # Query n-grams matched against entity names (words).
    graph_max_ngram: int = Field(default=4, ge=1, le=8)

    # -- fuse ---------------------------------------------------------------------------------
    # Fusion when a request does not name one: "weighted" (min-max normalised scores, a
    # convex combination by the weights above) or "rrf" (reciprocal ranks only).
    fusion: Literal["rrf", "weighted"] = "weighted"
    # RRF's constant k (Cormack et al. 2009): 1 / (k + rank).
    rrf_k: float = Field(default=60.0, gt=0.0)

    # -- spread: share of a turn's fused score lent to its neighbouring turns -----------------
    # To the next turn of its session (more when the turn asks a question: the answer
    # follows) and to the previous one. 0 turns spreading off.
    neighbour_after: float = Field(default=0.1, ge=0, le=1)
    neighbour_after_question: float = Field(default=0.5, ge=0, le=1)
    neighbour_before: float = Field(default=0.2, ge=0, le=1)
    # To the turn after next when the next turn asks a question (its answer).
    neighbour_answer: float = Field(default=0.4, ge=0, le=1)
    # And back: to the turn before last when the previous turn asks a question.
    neighbour_statement: float = Field(default=0.3, ge=0, le=1)

    # -- demote repeats -------------------------------------------------------------------------
    # A result whose source events were all shown by results above it (a fact restating a
    # message, a turn already quoted in another's exchange) goes after the results that bring
    # new events.
    demote_repeats: bool = True

    # -- materialise: what a result carries ----------------------------------------------------
    # Rows read beyond what top_k still needs, for hits left out (archived, deleted), and
    # fused hits kept for them (4 windows' worth).
    spare_rows: int = Field(default=8, ge=0, le=1000)
    # A message result carries its exchange (``SearchResult.context``): the question it answers
    # and the statement that question is about, the answer to the question it asks, a
    # question about it and its answer. One result then shows "I finished my screenplay" /
    # "What is it about?" / "Drama and romance" together (see ``TurnCatalog.exchange``).
    exchange_context: bool = True
    # A long context turn is quoted by its sentences closest to the query, within this many
    # words (at least its best sentence).
    context_words: int = Field(default=20, ge=1, le=1000)
    # A long memory's result carries a snippet: its sentences closest to the query, within
    # this many words (0: no snippets).
    snippet_words: int = Field(default=30, ge=0, le=1000)

    def depth(self, top_k: int) -> int:
        """How many candidates each retriever contributes for a request of ``top_k``."""
        return max(top_k * self.depth_factor, self.min_depth)

    def weights(self) -> dict[Retriever, float]:
        """Each enabled retriever's fusion weight, in fusion order."""
        weights = {
            Retriever.DENSE: self.dense_weight,
            Retriever.LEXICAL: self.lexical_weight,
            Retriever.GRAPH: self.graph_weight,
        }
        return {name: weight for name, weight in weights.items() if weight > 0}

    def neighbour_weights(self) -> NeighbourWeights:
        return NeighbourWeights(
            after=self.neighbour_after,
            after_question=self.neighbour_after_question,
            before=self.neighbour_before,
            answer=self.neighbour_answer,
            statement=self.neighbour_statement,
        )
