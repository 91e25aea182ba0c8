"""KV lookup: the stored cache covering the longest prefix of a token sequence, found through
the chunked token-hash chains (``kv_cartridges.tokens``) recorded in ``kv_prefixes``."""

from __future__ import annotations

from kv_cartridges.tokens import DEFAULT_CHUNK_TOKENS, check_token_ids, extend
from memsvc.errors import InvalidRequestError
from memsvc.schemas import KVLookupRequest, KVLookupResult
from memsvc.service.deps import ServiceDeps
from memsvc.service.kv import kv_public
from stores import kv as store

__all__ = ["lookup"]


def lookup(deps: ServiceDeps, tenant_id: str, request: KVLookupRequest) -> KVLookupResult:
    """The stored cache covering the longest prefix of ``token_ids`` for this model: the
    deepest shared chunk boundary, then a stored tail inside the next chunk if one matches."""
    try:
        ids = check_token_ids(request.token_ids)
    except ValueError as exc:
        raise InvalidRequestError(f"token_ids: {exc}", field="token_ids") from exc
    C = DEFAULT_CHUNK_TOKENS
    links: list[bytes] = []
    for start in range(0, len(ids) - len(ids) % C, C):
        links.append(extend(links[-1] if links else None, ids[start : start + C]))
    with deps.sessions() as session:
        found = store.prefix_matches(
            tenant_id, request.model_id, [h.hex() for h in links], session=session
        )
        depth = max((r.n_tokens // C for r in found if r.n_tokens % C == 0), default=0)
        best = [r for r in found if r.n_tokens == depth * C]
        tails = store.tail_prefixes(
            tenant_id,
            request.model_id,
            [r.kv_id for r in best],
            depth * C,
            min((depth + 1) * C, len(ids) + 1),
            session=session,
        )
        if depth == 0 and not tails:
            return KVLookupResult()
        prev = links[depth - 1] if depth else None
        hits = [
            t for t in tails if extend(prev, ids[depth * C : t.n_tokens]).hex() == t.prefix_hash
        ]
        if hits:
            longest = max(t.n_tokens for t in hits)
            best = [t for t in hits if t.n_tokens == longest]
        if not best:
            return KVLookupResult()
        rows = [store.get_kv(tenant_id, r.kv_id, session=session) for r in best]
        row = max((r for r in rows if r is not None), key=lambda r: (r.created_at, r.id))
        return KVLookupResult(n_tokens=best[0].n_tokens, kv=kv_public(row))
