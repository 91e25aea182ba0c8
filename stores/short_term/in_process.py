"""Working memory in a dict: the embedded default (no Redis)."""

from __future__ import annotations

import threading
from collections import defaultdict

from stores.short_term.base import Piece, ShortTermStore

__all__ = ["InProcessShortTermStore"]


def _order(piece: Piece) -> tuple:
    return (piece.event_time, piece.id)


class InProcessShortTermStore(ShortTermStore):
    def __init__(self) -> None:
        self._pieces: dict[tuple[str, str], dict[str, Piece]] = defaultdict(dict)
        self._users: dict[tuple[str, str | None], set[str]] = defaultdict(set)
        self._lock = threading.Lock()

    def add(self, tenant_id: str, pieces: list[Piece]) -> None:
        with self._lock:
            for piece in pieces:
                self._pieces[(tenant_id, piece.session_id)][piece.id] = piece
                self._users[(tenant_id, piece.user_id)].add(piece.session_id)

    def pieces(self, tenant_id: str, session_id: str) -> list[Piece]:
        with self._lock:
            found = list(self._pieces.get((tenant_id, session_id), {}).values())
        return sorted(found, key=_order)

    def remove(self, tenant_id: str, session_id: str, piece_ids: list[str]) -> None:
        with self._lock:
            held = self._pieces.get((tenant_id, session_id))
            if held is None:
                return
            for piece_id in piece_ids:
                held.pop(piece_id, None)
            if not held:
                self._drop(tenant_id, session_id)

    def _drop(self, tenant_id: str, session_id: str) -> None:
        self._pieces.pop((tenant_id, session_id), None)
        for (tenant, _), sessions in self._users.items():
            if tenant == tenant_id:
                sessions.discard(session_id)

    def sessions_of_user(self, tenant_id: str, user_id: str | None) -> list[str]:
        with self._lock:
            return sorted(self._users.get((tenant_id, user_id), set()))

    def clear(self, tenant_id: str, session_id: str) -> None:
        with self._lock:
            self._drop(tenant_id, session_id)

    def forget_user(self, tenant_id: str, user_id: str) -> None:
        with self._lock:
            for session_id in self._users.pop((tenant_id, user_id), set()):
                self._drop(tenant_id, session_id)
