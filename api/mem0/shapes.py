"""memsvc objects in mem0's response shapes (``memory``, ``event``, ``score``, ``results``).

Each memory carries mem0's keys and, beside them, what memsvc adds: ``kind``, the event time
(``occurred_at``), validity (``valid_from``/``valid_to``) and provenance (``source_event_ids``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from memsvc.schemas import MemoryHistoryEntry, MemoryPublic, SearchResult

__all__ = ["history_entry", "memory", "scored", "written"]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def memory(m: MemoryPublic) -> dict[str, Any]:
    """A memory as mem0's ``get`` returns it."""
    return {
        "id": m.id,
        "memory": m.text,
        "user_id": m.user_id,
        "agent_id": m.agent_id,
        "run_id": m.session_id,
        "app_id": m.metadata.get("app_id"),
        "hash": m.content_hash,
        "metadata": m.metadata,
        "categories": [],
        "immutable": False,
        "created_at": _iso(m.created_at),
        "updated_at": _iso(m.updated_at),
        "expiration_date": None if m.valid_to is None else m.valid_to.date().isoformat(),
        # memsvc's own, beside mem0's:
        "kind": m.kind,
        "occurred_at": _iso(m.occurred_at),
        "valid_from": _iso(m.valid_from),
        "valid_to": _iso(m.valid_to),
        "source_event_ids": m.source_event_ids,
    }


def scored(result: SearchResult) -> dict[str, Any]:
    """A search hit: the memory with its fused ``score`` (and memsvc's per-retriever scores)."""
    return memory(result.memory) | {
        "score": result.score,
        "dense_score": result.dense_score,
        "lexical_score": result.lexical_score,
    }


def written(m: MemoryPublic, event: str) -> dict[str, Any]:
    """One item of ``add``'s ``results``: what happened to which memory."""
    return {"id": m.id, "memory": m.text, "event": event, "data": {"memory": m.text}} | {
        k: v for k, v in memory(m).items() if k not in ("id", "memory")
    }


def history_entry(entry: MemoryHistoryEntry, index: int) -> dict[str, Any]:
    """One mutation as mem0's ``history`` lists it (``event``: ADD, UPDATE, DELETE)."""
    old, new = entry.old_value or {}, entry.new_value or {}
    scope = new or old
    return {
        "id": f"{entry.memory_id}:{index}",
        "memory_id": entry.memory_id,
        "input": [],
        "old_memory": old.get("text"),
        "new_memory": new.get("text"),
        "user_id": scope.get("user_id"),
        "agent_id": scope.get("agent_id"),
        "run_id": scope.get("session_id"),
        "event": entry.op,
        "metadata": scope.get("metadata"),
        "actor": entry.actor,
        "created_at": _iso(entry.created_at),
        "updated_at": _iso(entry.created_at),
    }
