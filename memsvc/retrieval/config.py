"""Retrieval knobs (``MEMSVC_RETRIEVAL__*``), chosen on LoCoMo dev and kept few on purpose."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from memsvc.retrieval.turns import NeighbourWeights

__all__ = ["RetrievalConfig"]


class RetrievalConfig(BaseModel):
    """How search ranks: candidate depth, fusion, neighbouring turns, snippets."""

    # Candidates each retriever contributes before fusion: max(this, 3 * top_k). Min-max
    # normalised scores need a deep enough list for the minimum to mean "not relevant".
    min_depth: int = Field(default=100, ge=10, le=2000)
    # Fusion when a request does not name one: "weighted" (normalised scores, dense and
    # lexical weighted equally) or "rrf" (ranks only).
    fusion: Literal["rrf", "weighted"] = "weighted"
    # Share of a turn's score lent to the next turn of its session (more when the turn asks
    # a question: the answer follows) and to the previous one. 0 turns spreading off.
    neighbour_after: float = Field(default=0.1, ge=0, le=1)
    neighbour_after_question: float = Field(default=0.5, ge=0, le=1)
    neighbour_before: float = Field(default=0.2, ge=0, le=1)
    # Share lent to the turn after next when the next turn asks a question (its answer).
    neighbour_answer: float = Field(default=0.4, ge=0, le=1)
    # And back: share lent to the turn before last when the previous turn asks a question.
    neighbour_statement: float = Field(default=0.3, ge=0, le=1)
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

    def neighbour_weights(self) -> NeighbourWeights:
        return NeighbourWeights(
            after=self.neighbour_after,
            after_question=self.neighbour_after_question,
            before=self.neighbour_before,
            answer=self.neighbour_answer,
            statement=self.neighbour_statement,
        )
