"""Named retrieval configurations: the default and the variants measured beside it.

``memsvc bench locomo --preset NAME`` asks with one of them; a service takes any of them as
``MEMSVC_RETRIEVAL__*`` settings. Each preset only names what it changes from the default.
"""

from __future__ import annotations

from typing import Any

from memsvc.config.retrieval import RetrievalConfig

__all__ = ["PRESETS", "preset"]

PRESETS: dict[str, dict[str, Any]] = {
    # The recommended ranking (chosen on LoCoMo dev).
    "default": {},
    # Ranks only: robust to score scales, ignores how sure each retriever is.
    "rrf": {"fusion": "rrf"},
    # One retriever each: the baselines hybrid search is measured against.
    "dense": {"lexical_weight": 0.0, "graph_weight": 0.0},
    "lexical": {"dense_weight": 0.0, "graph_weight": 0.0},
    # Hybrid without the entity graph.
    "no_graph": {"graph_weight": 0.0},
    # Each result alone: no neighbouring turns, no exchange, no demotion of repeats.
    "plain": {
        "neighbour_after": 0.0,
        "neighbour_after_question": 0.0,
        "neighbour_before": 0.0,
        "neighbour_answer": 0.0,
        "neighbour_statement": 0.0,
        "exchange_context": False,
        "demote_repeats": False,
    },
    # Shorter results: turns without their exchange (ev@250w over ev@10).
    "no_context": {"exchange_context": False},
}


def preset(name: str, base: RetrievalConfig | None = None) -> RetrievalConfig:
    """The named preset applied over ``base`` (the default config when None)."""
    if name not in PRESETS:
        raise ValueError(f"unknown retrieval preset {name!r}; known: {', '.join(PRESETS)}")
    values = (base or RetrievalConfig()).model_dump()
    return RetrievalConfig.model_validate({**values, **PRESETS[name]})
