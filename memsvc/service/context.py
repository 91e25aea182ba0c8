"""Context assembly: a prompt-ready block of memories under a token budget.

Sections, in prompt order: the most relevant long-term memories (facts and messages), episode
summaries, then this session's working memory (most recent last, nearest the prompt). Each line
carries its date. Tokens are counted with the embedder's tokenizer (MiniLM's WordPiece by
default); the whole block is counted again at the end and trimmed until it fits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from memsvc.errors import InvalidRequestError
from memsvc.retrieval.render import result_line
from memsvc.schemas import (
    ContextItem,
    ContextRequest,
    ContextResponse,
    MemoryFilter,
    SearchRequest,
    SearchResult,
)
from memsvc.service.deps import ServiceDeps
from memsvc.service.search import search_memories
from stores.short_term import Piece

__all__ = ["assemble_context"]

HEADERS = {
    "facts": "## Relevant memories",
    "episodes": "## Episodes",
    "working_memory": "## This conversation so far",
}
# Share of the budget working memory may take when there is also long-term memory to show.
WORKING_SHARE = 0.4


def _query(request: ContextRequest) -> str:
    if request.query and request.query.strip():
        return request.query
    if request.messages:
        recent = [m.content for m in request.messages if m.content.strip()][-3:]
        if recent:
            return "\n".join(recent)
    raise InvalidRequestError("give a query or at least one message", field="query")


def _minute(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _working_items(
    pieces: list[Piece], budget: int, count_many: Callable[[list[str]], list[int]]
) -> tuple[list[ContextItem], int]:
    """The newest pieces that fit ``budget``, returned oldest first."""
    # Only the newest pieces can fit: a piece takes at least one token, so never look further.
    recent = pieces[-budget:] if budget > 0 else []
    prefixes = [f"[{_minute(p.event_time)}] " for p in recent]
    # A piece's own tokens were counted when it was written; only its date prefix is new here
    # (the embedder's WordPiece splits at the space, so the counts add up; the whole block is
    # counted again at the end in any case).
    distinct = list(dict.fromkeys(prefixes))
    prefix_tokens = dict(zip(distinct, count_many(distinct), strict=True))
    chosen: list[ContextItem] = []
    used = 0
    for piece, prefix in zip(reversed(recent), reversed(prefixes), strict=True):
        tokens = prefix_tokens[prefix] + piece.tokens + 1
        if used + tokens > budget:
            break
        used += tokens
        chosen.append(
            ContextItem(
                section="working_memory",
                tier="short_term",
                text=prefix + piece.text,
                occurred_at=piece.event_time,
                score=None,
                memory_id=None,
                source_event_ids=[piece.event_id],
            )
        )
    return list(reversed(chosen)), used


def _long_term_item(result: SearchResult) -> ContextItem:
    memory = result.memory
    section = "episodes" if memory.kind == "episode" else "facts"
    return ContextItem(
        section=section,
        tier=result.tier,
        text=f"- {result_line(result)}",
        occurred_at=memory.occurred_at,
        score=result.score,
        memory_id=None if result.tier == "short_term" else memory.id,
        # The line quotes the result's exchange too: its turns are sources of the line.
        source_event_ids=result.shown_event_ids(),
    )


def _render(items: list[ContextItem]) -> str:
    blocks = []
    for section in ("facts", "episodes", "working_memory"):
        lines = [i.text for i in items if i.section == section]
        if lines:
            blocks.append("\n".join([HEADERS[section], *lines]))
    return "\n\n".join(blocks)


def assemble_context(deps: ServiceDeps, tenant_id: str, request: ContextRequest) -> ContextResponse:
    """The best of working and long-term memory for ``request``, within its token budget."""
    query = _query(request)
    count = deps.embedder.count_tokens
    count_many = deps.embedder.count_tokens_many
    budget = request.token_budget
    pieces = deps.short_term.pieces(tenant_id, request.session_id) if request.session_id else []
    working, used = _working_items(pieces, int(budget * WORKING_SHARE), count_many)
    shown_events = {e for item in working for e in item.source_event_ids}
    found = search_memories(
        deps,
        tenant_id,
        SearchRequest(
            query=query,
            filters=MemoryFilter(user_id=request.user_id, agent_id=request.agent_id),
            top_k=min(request.top_k, deps.settings.max_top_k),
        ),
    )
    remaining = budget - used - sum(n + 2 for n in count_many(list(HEADERS.values())))
    candidates = [
        _long_term_item(result)
        for result in found.data
        # Not what the working-memory section already shows.
        if not shown_events.intersection(result.memory.source_event_ids)
    ]
    long_term: list[ContextItem] = []
    for item, n in zip(candidates, count_many([i.text for i in candidates]), strict=True):
        tokens = n + 1
        if tokens <= remaining:
            long_term.append(item)
            remaining -= tokens
    items = long_term + working
    text = _render(items)
    tokens = count(text) if text else 0
    # Tokenisers are not additive across joins in every case: count the block itself.
    while items and tokens > budget:
        items.pop(0 if not long_term else items.index(long_term.pop()))
        text = _render(items)
        tokens = count(text) if text else 0
    return ContextResponse(context=text, tokens=tokens, token_budget=budget, items=items)
