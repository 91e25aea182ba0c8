"""The entity graph as a picture: networkx computes the layout, the template draws SVG.

No layout code of our own: ``networkx.spring_layout`` (Fruchterman-Reingold) with a fixed seed,
so one graph always gets the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import networkx as nx

from memsvc.schemas import EntityPublic, RelationPublic

__all__ = ["Edge", "Node", "Picture", "layout"]

WIDTH, HEIGHT, MARGIN = 900, 560, 60
LABEL_ROOM = 160  # names are written right of their node


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    type: str
    x: float
    y: float


@dataclass(frozen=True)
class Edge:
    type: str
    x1: float
    y1: float
    x2: float
    y2: float
    current: bool  # still valid now (drawn solid), else invalidated (dashed)


@dataclass(frozen=True)
class Picture:
    nodes: list[Node]
    edges: list[Edge]
    width: int = WIDTH
    height: int = HEIGHT


def layout(entities: list[EntityPublic], relations: list[RelationPublic], now: datetime) -> Picture:
    """Positions in an SVG canvas for every entity, and a line per relation between two."""
    graph = nx.Graph()
    for e in entities:
        graph.add_node(e.id)
    for r in relations:
        if r.source.id in graph and r.target.id in graph:
            graph.add_edge(r.source.id, r.target.id)
    if not graph:
        return Picture([], [])
    positions = nx.spring_layout(graph, seed=7) if len(graph) > 1 else {entities[0].id: (0, 0)}
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]

    def scale(value: float, low: float, high: float, size: int) -> float:
        span = high - low
        return round(
            size / 2 if span == 0 else MARGIN + (value - low) / span * (size - 2 * MARGIN), 1
        )

    xy = {
        pk: (scale(p[0], min(xs), max(xs), WIDTH), scale(p[1], min(ys), max(ys), HEIGHT))
        for pk, p in positions.items()
    }
    nodes = [Node(e.id, e.name, e.type, *xy[e.id]) for e in entities]
    edges = [
        Edge(r.type, *xy[r.source.id], *xy[r.target.id], r.valid_to is None or r.valid_to > now)
        for r in relations
        if r.source.id in xy and r.target.id in xy
    ]
    return Picture(nodes, edges)
