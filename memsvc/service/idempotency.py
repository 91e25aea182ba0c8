"""Idempotency keys: a retried write gets the first reply back and writes nothing again.

A client sends ``Idempotency-Key: <key>`` with a write; keys are per tenant (``scope``; "" for
the admin key), so a rotated API key's retries still find their first reply. The request is
fingerprinted (method, path, query, body): the same key with another request is refused.

Two ways a reply is kept (the api layer picks per route, see ``api/idempotency.py``):

- **in the write's transaction** (``record_reply``; events and memories): the reply row is written
  ``done`` by the transaction that writes the data, so the write and its reply commit together
  or not at all. A process killed after that commit leaves a reply to replay; one killed
  before leaves nothing, and the retry simply runs. Two requests racing with one key: the
  second's ``record_reply`` finds the first's row and its transaction rolls back (409 ``in
  progress``; retried, it gets the first reply).
- **claimed, then completed** (every other write): a ``pending`` row holds the key while the
  request runs (a second request meanwhile gets 409), the reply is stored after it. A request
  that fails gives the key back; one whose process dies holds it until ``lock_seconds`` pass.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel

from memsvc.errors import ConflictError, InvalidRequestError
from memsvc.service.deps import ServiceDeps
from stores import idempotency as store
from stores.models import IdempotencyRow, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "HEADER",
    "IdempotencyKeys",
    "IdempotentRequest",
    "RequestHash",
    "Seen",
    "StoredReply",
    "after_commit",
    "check_key",
    "in_progress",
    "record_reply",
]

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
# Printable ASCII without spaces: UUIDs, ULIDs, hashes and "order-123:attempt" all fit.
_KEY_CHARS = re.compile(r"[\x21-\x7e]+")
JSON = "application/json"


def check_key(raw: str, max_length: int) -> str:
    """The key as sent, or an ``InvalidRequestError`` naming the header."""
    if not raw or len(raw) > max_length or not _KEY_CHARS.fullmatch(raw):
        raise InvalidRequestError(
            f"{HEADER} must be 1 to {max_length} printable ASCII characters without spaces",
            field=HEADER,
        )
    return raw


class RequestHash:
    """The fingerprint of a request: sha256 of method, path, query and body, fed as it streams."""

    def __init__(self, method: str, path: str, query: bytes = b"") -> None:
        self._hash = hashlib.sha256(b"\0".join([method.encode(), path.encode(), query, b""]))

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def in_progress(key: str) -> ConflictError:
    """The 409 a request gets while another one with its key runs (retry: the first reply)."""
    return ConflictError(
        f"a request with {HEADER} {key!r} is in progress; retry to get its reply",
        field=HEADER,
        code="idempotency_in_progress",
        retry_after=1,
    )


@dataclass(frozen=True)
class StoredReply:
    """The first reply sent for a key, replayed byte for byte."""

    status_code: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class IdempotentRequest:
    """A write sent with an idempotency key, as the service sees it."""

    scope: str  # the tenant id ("" for the admin key)
    key: str
    fingerprint: str
    status_code: int = 201  # of the reply when the write succeeds


@dataclass(frozen=True)
class Seen:
    """What is known of a key already used: a reply to replay, or a request still running."""

    reply: StoredReply | None
    fingerprint: str | None

    def replay(self, key: str, fingerprint: str) -> StoredReply:
        """The stored reply for this request, or the error a retry gets."""
        if self.reply is None:
            raise in_progress(key)
        if self.fingerprint != fingerprint:
            raise InvalidRequestError(
                f"{HEADER} {key!r} was already used for another request (method, path or "
                "body differ); send a new key for a new request",
                field=HEADER,
                code="idempotency_key_reused",
            )
        return self.reply


def record_reply(
    session: Session, deps: ServiceDeps, request: IdempotentRequest, reply: BaseModel
) -> None:
    """Store ``reply`` as the key's answer inside the caller's write transaction.

    Raises ``ConflictError`` (``idempotency_in_progress``) when another request holds the key:
    the caller's transaction then rolls back, so nothing is written twice.
    """
    session.flush()  # the write's own statements first: their errors are not ours
    now = utcnow()
    taken = store.record(
        request.scope,
        request.key,
        fingerprint=request.fingerprint,
        status_code=request.status_code,
        content_type=JSON,
        body=reply.model_dump_json().encode(),
        now=now,
        expires_at=now + timedelta(seconds=deps.settings.idempotency.ttl_seconds),
        session=session,
    )
    if not taken:
        raise in_progress(request.key)


def after_commit(deps: ServiceDeps, request: IdempotentRequest | None) -> None:
    """Tests only: die right after the commit, before the reply (see Settings)."""
    fault_key = deps.settings.test_kill_after_commit_key
    if request is not None and fault_key and request.key == fault_key:
        log.warning("test fault: killing the process after committing %s", request.key)
        os.kill(os.getpid(), signal.SIGKILL)


def _seen(row: IdempotencyRow | None) -> Seen | None:
    now = utcnow()
    if row is None or row.expires_at <= now:
        return None
    if row.state == "pending":
        lock = row.locked_until
        return Seen(None, None) if lock is not None and lock > now else None
    reply = StoredReply(row.status_code or 200, row.content_type or JSON, row.body or b"")
    return Seen(reply, row.fingerprint)


class IdempotencyKeys:
    """Keys outside a write's transaction: look up, claim, complete, release, purge."""

    def __init__(self, deps: ServiceDeps) -> None:
        self._deps = deps
        self._purged_at = 0.0

    def lookup(self, scope: str, key: str) -> Seen | None:
        """The key's state, or ``None`` when it is free (never used, expired, or abandoned)."""
        with self._deps.sessions() as session:
            return _seen(store.find(scope, key, session=session))

    def claim(self, scope: str, key: str) -> str | None:
        """Hold a free key for a request about to run; returns the claim's token, or None."""
        config = self._deps.settings.idempotency
        token = uuid.uuid4().hex
        now = utcnow()
        with self._deps.sessions.begin() as session:
            held = store.claim(
                scope,
                key,
                token,
                now=now,
                locked_until=now + timedelta(seconds=config.lock_seconds),
                expires_at=now + timedelta(seconds=config.ttl_seconds),
                session=session,
            )
        return token if held else None

    def complete(
        self, scope: str, key: str, token: str, fingerprint: str, reply: StoredReply
    ) -> bool:
        """Keep the reply of a claimed request; False when its claim was taken over."""
        with self._deps.sessions.begin() as session:
            return store.complete(
                scope,
                key,
                token,
                fingerprint=fingerprint,
                status_code=reply.status_code,
                content_type=reply.content_type,
                body=reply.body,
                session=session,
            )

    def release(self, scope: str, key: str, token: str) -> None:
        """Free a claimed key: its request failed and changed nothing."""
        with self._deps.sessions.begin() as session:
            store.release(scope, key, token, session=session)

    def purge_expired(self, *, now_s: float) -> int:
        """Delete expired keys, at most once per ``purge_interval_seconds``; returns how many."""
        if now_s - self._purged_at < self._deps.settings.idempotency.purge_interval_seconds:
            return 0
        self._purged_at = now_s
        with self._deps.sessions.begin() as session:
            return store.purge_expired(utcnow(), session=session)
