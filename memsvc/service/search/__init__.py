"""Hybrid search over long- and short-term memory, as one pipeline of named stages.

1. **candidates** (:mod:`.candidates`): the index partitions to read and the memories the
   request's filters allow.
2. **retrieve** (:mod:`.retrieve`): each enabled retriever's ranked list (dense, lexical,
   graph), working-memory pieces scored beside long-term memories.
3. **fuse** (:func:`memsvc.retrieval.fusion.fuse`): one score per item in [0, 1].
4. **spread** (:func:`memsvc.retrieval.turns.spread_within`): a turn lends part of its score
   to its neighbouring turns; then :func:`~memsvc.retrieval.fusion.rank` keeps the best.
5. **demote repeats** (:class:`memsvc.retrieval.repeats.RepeatDemotion`): results that show
   only events shown above go last.
6. **materialise** (:mod:`.results`): rows read once, public views, snippets, exchanges.

Every knob is a field of :class:`~memsvc.retrieval.config.RetrievalConfig`.
"""

from __future__ import annotations

from memsvc.errors import InvalidRequestError
from memsvc.retrieval.fusion import FusionMethod, fuse, rank
from memsvc.retrieval.turns import spread_within
from memsvc.schemas import SearchRequest, SearchResponse
from memsvc.service.deps import ServiceDeps
from memsvc.service.search.candidates import find_candidates
from memsvc.service.search.results import ResultBuilder, select_hits
from memsvc.service.search.retrieve import Query, retrieve
from memsvc.service.search.stages import Stages
from memsvc.service.validation import check_filter, check_text

__all__ = ["search_memories"]


def search_memories(deps: ServiceDeps, tenant_id: str, request: SearchRequest) -> SearchResponse:
    """The ``top_k`` memories of the tenant most relevant to ``request.query``."""
    check_text(deps.settings, request.query, "query")
    check_filter(deps.settings, request.filters)
    if request.top_k > deps.settings.max_top_k:
        raise InvalidRequestError(
            f"top_k is {request.top_k}; the limit is {deps.settings.max_top_k}", field="top_k"
        )
    stages = Stages(deps.settings.metrics.enabled)
    with stages("sync"):
        deps.sync_indexes()
    config = deps.settings.retrieval
    with stages("embed"):
        query = Query.embed(deps, request.query)
    with stages("candidates"):
        candidates = find_candidates(deps, tenant_id, request.filters)
    allowed = candidates.allowed
    # The partitions searched are loaded (on demand) and stay loaded until the results are
    # built: the turn catalog gives them their context.
    with deps.indexes.hold(candidates.partitions):
        with stages("retrieve"):
            found = retrieve(deps, tenant_id, request, query, candidates, config)
        with stages("fuse"):
            method = FusionMethod(request.fusion or config.fusion)
            fused_scores = fuse(found.lists, config.weights(), method=method, rrf_k=config.rrf_k)
            scores = spread_within(
                fused_scores, deps.indexes.turns, config.neighbour_weights(), allowed
            )
            # Archived memories are dropped while materialising: keep a few more so top_k
            # stays full.
            limit = request.top_k + 4 * config.spare_rows
            fused = rank(scores, found.lists, limit=limit, fused=fused_scores)
            if request.threshold is not None:
                fused = [f for f in fused if f.score >= request.threshold]
        with stages("materialise"):
            builder = ResultBuilder(
                deps, tenant_id, request, found.pieces, query.vector, allowed, config
            )
            results = [builder.result(hit) for hit in select_hits(builder, fused, request.top_k)]
    stages.done()
    return SearchResponse(data=results, count=len(results))
