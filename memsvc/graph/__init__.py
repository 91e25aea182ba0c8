"""The entity graph's memory logic: which entities and relations a fact holds."""

from memsvc.graph.entities import EntityMention, FactGraph, RelationMention, read_graph

__all__ = ["EntityMention", "FactGraph", "RelationMention", "read_graph"]
