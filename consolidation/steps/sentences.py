"""Step *sentences*: embed the sentences of a session's long messages (for search and snippets).

Promotion reuses each message's ingest vector and embeds nothing (it may run inside a request);
the sentence vectors of messages that have several sentences are added here, in the background.
A message of one sentence is stamped with an empty blob, so it is not looked at again. Re-running
is harmless: only rows still without sentence vectors are read, and the result is the same.
"""

from __future__ import annotations

from collections.abc import Callable

from memsvc.retrieval.sentences import encode_sentences
from memsvc.service.deps import ServiceDeps
from memsvc.service.runtime import UNPACED, Pace
from stores import memories as store
from stores.models import utcnow

__all__ = ["embed_sentences"]

_BATCH = 256


def embed_sentences(
    deps: ServiceDeps,
    tenant_id: str,
    session_id: str,
    on_batch: Callable[[int], None] | None = None,
    pace: Pace = UNPACED,
) -> int:
    """Embed the sentences of the session's messages that lack them; returns rows updated.

    ``on_batch(updated so far)`` runs after each batch: a job reports progress with it, so a
    job that yields to requests between batches (``pace``) is not taken for a stale one.
    """
    updated = 0
    while not pace.stopping:
        pace.yield_to_requests()
        with deps.sessions() as session:
            rows = store.messages_without_sentences(
                tenant_id, session_id, limit=_BATCH, session=session
            )
            todo = [(row.pk, row.text) for row in rows]
        if not todo:
            break
        blobs = encode_sentences(deps.embedder, [text for _, text in todo])
        with deps.sessions.begin() as session:
            rev = store.reserve_revs(1, session=session)
            current = store.rows_by_pks(tenant_id, [pk for pk, _ in todo], session=session)
            for (pk, text), blob in zip(todo, blobs, strict=True):
                row = current.get(pk)
                if row is None or row.text != text or row.sentence_vectors is not None:
                    continue  # deleted, rewritten or done by another run meanwhile
                row.sentence_vectors = blob or b""
                row.rev = rev  # derived indexes pick the vectors up on their next sync
                row.updated_at = utcnow()
                updated += 1
        if on_batch is not None:
            on_batch(updated)
        if len(todo) < _BATCH:
            break
    return updated
