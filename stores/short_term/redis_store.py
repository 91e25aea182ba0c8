"""Working memory in Redis: shared by every API process and worker of the stack.

Keys (all under ``<prefix>:<tenant>``):
- ``s:<session>:order`` sorted set of piece ids scored by event time (atomic, so concurrent
  writers to one session interleave correctly);
- ``s:<session>:data`` hash piece id -> JSON (vector as base64 float32);
- ``u:<user>`` set of the user's sessions that hold pieces.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import numpy as np
import redis

from stores.short_term.base import Piece, ShortTermStore

__all__ = ["RedisShortTermStore"]

_NO_USER = "\x00none"


def _encode(piece: Piece) -> str:
    return json.dumps(
        {
            "id": piece.id,
            "event_id": piece.event_id,
            "event_pk": piece.event_pk,
            "session_id": piece.session_id,
            "user_id": piece.user_id,
            "agent_id": piece.agent_id,
            "role": piece.role,
            "speaker": piece.speaker,
            "text": piece.text,
            "event_time": piece.event_time.isoformat(),
            "vector": base64.b64encode(np.asarray(piece.vector, np.float32).tobytes()).decode(),
            "tokens": piece.tokens,
        }
    )


def _decode(raw: bytes | str) -> Piece:
    data = json.loads(raw)
    data["event_time"] = datetime.fromisoformat(data["event_time"]).astimezone(UTC)
    data["vector"] = np.frombuffer(base64.b64decode(data["vector"]), dtype=np.float32)
    return Piece(**data)


class RedisShortTermStore(ShortTermStore):
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "memsvc:st",
        client: redis.Redis | None = None,
        timeout: float = 5.0,
    ):
        # Both timeouts bounded: a Redis that went away is an error in seconds, not a hang.
        self._redis = client or redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
        )
        self._prefix = prefix

    def _key(self, tenant_id: str, *parts: str) -> str:
        return ":".join((self._prefix, tenant_id, *parts))

    def add(self, tenant_id: str, pieces: list[Piece]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for piece in pieces:
            order = self._key(tenant_id, "s", piece.session_id, "order")
            data = self._key(tenant_id, "s", piece.session_id, "data")
            pipe.hset(data, piece.id, _encode(piece))
            pipe.zadd(order, {piece.id: piece.event_time.timestamp()})
            pipe.sadd(self._key(tenant_id, "u", piece.user_id or _NO_USER), piece.session_id)
        pipe.execute()

    def pieces(self, tenant_id: str, session_id: str) -> list[Piece]:
        order = self._key(tenant_id, "s", session_id, "order")
        data = self._key(tenant_id, "s", session_id, "data")
        # Equal scores come back in lexicographic member order: arrival order of the ids.
        ids = self._redis.zrange(order, 0, -1)
        if not ids:
            return []
        raw = self._redis.hmget(data, ids)
        return [_decode(r) for r in raw if r is not None]

    def remove(self, tenant_id: str, session_id: str, piece_ids: list[str]) -> None:
        if not piece_ids:
            return
        order = self._key(tenant_id, "s", session_id, "order")
        data = self._key(tenant_id, "s", session_id, "data")
        # Their users, read first: once the last piece is gone the session leaves their sets.
        users = {json.loads(r)["user_id"] for r in self._redis.hmget(data, piece_ids) if r}
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(order, *piece_ids)
        pipe.hdel(data, *piece_ids)
        pipe.zcard(order)
        remaining = pipe.execute()[-1]
        if remaining == 0:
            self._clear(tenant_id, session_id, users)

    def sessions_of_user(self, tenant_id: str, user_id: str | None) -> list[str]:
        members = self._redis.smembers(self._key(tenant_id, "u", user_id or _NO_USER))
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    def clear(self, tenant_id: str, session_id: str) -> None:
        self._clear(tenant_id, session_id, set())

    def forget_user(self, tenant_id: str, user_id: str) -> None:
        for session_id in self.sessions_of_user(tenant_id, user_id):
            self.clear(tenant_id, session_id)
        self._redis.delete(self._key(tenant_id, "u", user_id))

    def _clear(self, tenant_id: str, session_id: str, users: set[str | None]) -> None:
        raw = self._redis.hvals(self._key(tenant_id, "s", session_id, "data"))
        users = users | {json.loads(r)["user_id"] for r in raw}
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._key(tenant_id, "s", session_id, "order"))
        pipe.delete(self._key(tenant_id, "s", session_id, "data"))
        for user in users:
            pipe.srem(self._key(tenant_id, "u", user or _NO_USER), session_id)
        pipe.execute()

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def intact(self) -> bool:
        # The marker goes with everything else when Redis restarts empty or is flushed.
        return bool(self._redis.exists(f"{self._prefix}:intact"))

    def mark_intact(self) -> None:
        self._redis.set(f"{self._prefix}:intact", "1")

    def close(self) -> None:
        self._redis.close()
