"""memsvc as an MCP server: tools for agents (Claude Code, Cursor, agent frameworks).

A thin adapter over :class:`~memsvc.AsyncMemoryClient`: every tool is one or two calls of the
client, so it goes through the operations table like REST and the embedded ``Memory`` do, and
answers (and refuses) the same way. Where the client comes from is the caller's choice:

- ``memsvc mcp`` (stdio): one client for the process, a remote server's (``--url``,
  ``--api-key``) or an embedded service's (``--data-dir``);
- the API's ``/mcp`` (streamable HTTP, ``api/mcp.py``): a client per request, acting for the
  tenant of the request's key.

A refusal comes back as an MCP tool error whose text holds the REST error's code, status and
message (``invalid_request (400): top_k: ...``); a tool never changes anything when it fails.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from memsvc.errors import APIStatusError, MemsvcError
from memsvc.schemas import (
    ContextResponse,
    EventPublic,
    MemoryHistoryEntry,
    MemoryPublic,
    MemoryWriteResult,
    Page,
    SearchResult,
)

# The modules, not `memsvc.sdk`: the API mounts this server, and `memsvc.sdk` names the
# embedded `Memory` (built on the workers' package), which the API must not depend on.
from memsvc.sdk._async.client import AsyncMemoryClient
from memsvc.sdk._base import UNSET

__all__ = ["ChatTurn", "ClientFor", "Hit", "ScopeDefaults", "build_server", "tool_error"]

#: The client a tool call uses; ``ctx`` is ``None`` for static resources (stdio only).
ClientFor = Callable[[Context | None], AsyncMemoryClient]

_T = TypeVar("_T")

INSTRUCTIONS = (
    "Long-term memory. Before answering, call get_context (or search_memories) with the "
    "user's request to recall what is known; store durable facts and preferences with "
    "add_memories, or whole exchanges with add_chat_turns. Memories are scoped by user_id, "
    "agent_id and session_id; the server may have defaults for them."
)

Kind = Literal["fact", "preference", "event", "episode", "plan", "note", "message"]
UserId = Annotated[str | None, Field(description="The user the memories are about.")]
AgentId = Annotated[str | None, Field(description="The agent they belong to.")]
SessionId = Annotated[str | None, Field(description="The conversation (session) id.")]
MemoryId = Annotated[str, Field(description="A memory id (from search or list results).")]
MetadataFilter = Annotated[
    dict[str, str | int | float | bool | None] | None,
    Field(description="Keep memories whose metadata has these exact values."),
]


class ChatTurn(BaseModel):
    """One message of a conversation."""

    role: Literal["user", "assistant", "system", "tool"] = "user"
    content: str = Field(description="What was said.")
    speaker: str | None = Field(default=None, description="Who spoke (a name), if known.")
    event_time: datetime | None = Field(default=None, description="When it was said; now.")


class Hit(BaseModel):
    """A memory found: flat, so an agent reads it (and a client checks it) cheaply. The whole
    memory is ``get_memory(id)``."""

    id: str
    text: str = Field(description="The memory (for a long one, quote ``snippet``).")
    snippet: str | None = Field(description="Its sentences closest to the query, if long.")
    score: float = Field(description="Fused relevance in [0, 1].")
    tier: str = Field(description="long_term, or short_term: a recent turn of a session.")
    kind: str
    occurred_at: datetime
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    metadata: dict[str, Any]
    source_event_ids: list[str] = Field(description="Provenance: the events it states.")
    context: list[str] = Field(description="Turns of its exchange, in conversation order.")

    @classmethod
    def of(cls, result: SearchResult) -> Hit:
        memory = result.memory
        return cls(
            id=memory.id,
            text=memory.text,
            snippet=result.snippet,
            score=result.score,
            tier=result.tier,
            kind=memory.kind,
            occurred_at=memory.occurred_at,
            user_id=memory.user_id,
            agent_id=memory.agent_id,
            session_id=memory.session_id,
            metadata=memory.metadata,
            source_event_ids=memory.source_event_ids,
            context=[turn.snippet or turn.text for turn in result.context],
        )


class ListResult(BaseModel):
    """A page of memories; pass ``next_cursor`` back as ``cursor`` for the next one."""

    memories: list[MemoryPublic]
    next_cursor: str | None


@dataclass(frozen=True)
class ScopeDefaults:
    """Scope ids used when a tool call names none (``memsvc mcp --user-id ...``)."""

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None

    def apply(
        self, user_id: str | None, agent_id: str | None, session_id: str | None
    ) -> dict[str, str | None]:
        if user_id is None and agent_id is None and session_id is None:
            return {
                "user_id": self.user_id,
                "agent_id": self.agent_id,
                "session_id": self.session_id,
            }
        return {"user_id": user_id, "agent_id": agent_id, "session_id": session_id}

    @property
    def any(self) -> bool:
        return any((self.user_id, self.agent_id, self.session_id))


def tool_error(exc: MemsvcError) -> ToolError:
    """The REST refusal as an MCP tool error: code, status and the same message."""
    if isinstance(exc, APIStatusError):
        return ToolError(f"{exc.code} ({exc.status_code}): {exc.message}")
    return ToolError(exc.message)


async def _call(call: Awaitable[_T]) -> _T:
    try:
        return await call
    except MemsvcError as exc:
        raise tool_error(exc) from exc


def _read_only(title: str) -> ToolAnnotations:
    return ToolAnnotations(title=title, read_only_hint=True, open_world_hint=False)


def build_server(
    client_for: ClientFor, defaults: ScopeDefaults | None = None, *, name: str = "memsvc"
) -> MCPServer:
    """The MCP server: its tools call ``client_for(ctx)``; ``defaults`` fill in the scope of a
    call that names none (a call naming any scope id uses exactly the ones it names)."""
    scope = defaults or ScopeDefaults()
    # WARNING: the SDK configures the root logger when nothing has, at INFO by default.
    server = MCPServer(name, instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(annotations=ToolAnnotations(title="Remember", idempotent_hint=True))
    async def add_memories(
        texts: Annotated[list[str], Field(description="Memories to store, one fact each.")],
        ctx: Context,
        kind: Annotated[Kind, Field(description="What they are.")] = "fact",
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Stored with each memory.")
        ] = None,
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> list[MemoryWriteResult]:
        """Store memories (all or nothing). An exact duplicate in its scope is a NOOP and
        comes back as the stored memory with ``event: NOOP``."""
        client = client_for(ctx)
        items = [{"text": text} for text in texts]
        ids = scope.apply(user_id, agent_id, session_id)
        return await _call(client.add(items, kind=kind, metadata=metadata, **ids))  # type: ignore[return-value]

    @server.tool(annotations=ToolAnnotations(title="Record chat turns"))
    async def add_chat_turns(
        messages: Annotated[list[ChatTurn], Field(description="The turns, oldest first.")],
        ctx: Context,
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: Annotated[
            str | None, Field(description="The conversation; 'default' when none.")
        ] = None,
    ) -> list[EventPublic]:
        """Append turns of a conversation. They are recalled at once (working memory) and
        consolidated into long-term facts, episodes and the entity graph."""
        client = client_for(ctx)
        ids = scope.apply(user_id, agent_id, session_id)
        ids["session_id"] = ids["session_id"] or scope.session_id or "default"
        events = [m.model_dump(exclude_none=True) for m in messages]
        return await _call(client.add_events(events, **ids))

    # Unstructured on purpose: clients check structured results against the tool's output
    # schema, and for ten hits that check cost more than the search (``memsvc bench mcp``).
    @server.tool(annotations=_read_only("Search memory"), structured_output=False)
    async def search_memories(
        query: Annotated[str, Field(description="What to look for, in words.")],
        ctx: Context,
        top_k: Annotated[int, Field(description="How many results at most.")] = 10,
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        kind: Annotated[Kind | None, Field(description="Only this kind.")] = None,
        metadata: MetadataFilter = None,
    ) -> str:
        """Hybrid recall (dense + BM25 + entity graph, fused), best first: a JSON list of
        hits, each with its id, text, score and provenance (``get_memory`` for the rest)."""
        client = client_for(ctx)
        filters: dict[str, Any] = {}
        if kind is not None:
            filters["kind"] = kind
        if metadata:
            filters["metadata"] = metadata
        ids = scope.apply(user_id, agent_id, session_id)
        results = await _call(client.search(query, filters=filters, top_k=top_k, **ids))
        hits = [Hit.of(result).model_dump(mode="json") for result in results]
        return json.dumps(hits, ensure_ascii=False)

    @server.tool(annotations=_read_only("Memory context for a prompt"))
    async def get_context(
        ctx: Context,
        query: Annotated[
            str | None, Field(description="The request to recall for; default: the session.")
        ] = None,
        token_budget: Annotated[int, Field(description="Tokens the block may take.")] = 1024,
        top_k: Annotated[int, Field(description="Long-term memories considered.")] = 20,
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
    ) -> ContextResponse:
        """A prompt-ready block: the session's working memory plus the most relevant
        long-term memories, dated, under ``token_budget`` tokens. Put ``context`` in the
        prompt."""
        client = client_for(ctx)
        ids = scope.apply(user_id, agent_id, session_id)
        return await _call(client.get_context(query, token_budget=token_budget, top_k=top_k, **ids))

    @server.tool(annotations=_read_only("List memories"))
    async def list_memories(
        ctx: Context,
        limit: Annotated[int, Field(description="Page size.")] = 20,
        cursor: Annotated[str | None, Field(description="From a previous page.")] = None,
        order: Annotated[Literal["desc", "asc"], Field(description="Newest first: desc.")] = "desc",
        user_id: UserId = None,
        agent_id: AgentId = None,
        session_id: SessionId = None,
        kind: Annotated[Kind | None, Field(description="Only this kind.")] = None,
        metadata: MetadataFilter = None,
    ) -> ListResult:
        """A page of stored memories, newest first by default."""
        client = client_for(ctx)
        filters: dict[str, Any] = {}
        if kind is not None:
            filters["kind"] = kind
        if metadata:
            filters["metadata"] = metadata
        ids = scope.apply(user_id, agent_id, session_id)
        page: Page[MemoryPublic] = await _call(
            client.get_all(filters=filters, limit=limit, cursor=cursor, order=order, **ids)
        )
        return ListResult(memories=page.data, next_cursor=page.next_cursor)

    @server.tool(annotations=_read_only("Get a memory"))
    async def get_memory(memory_id: MemoryId, ctx: Context) -> MemoryPublic:
        """One memory with its scope, metadata, validity and provenance."""
        return await _call(client_for(ctx).get(memory_id))

    @server.tool(annotations=ToolAnnotations(title="Correct a memory", idempotent_hint=True))
    async def update_memory(
        memory_id: MemoryId,
        ctx: Context,
        text: Annotated[str | None, Field(description="The corrected text.")] = None,
        kind: Annotated[Kind | None, Field(description="A new kind.")] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Replaces the metadata.")
        ] = None,
        importance: Annotated[float | None, Field(description="0 to 1.")] = None,
    ) -> MemoryPublic:
        """Change the given fields only (the old value stays in the memory's history)."""
        given = {"text": text, "kind": kind, "metadata": metadata, "importance": importance}
        fields = {k: (UNSET if v is None else v) for k, v in given.items()}
        return await _call(client_for(ctx).update(memory_id, **fields))

    @server.tool(annotations=ToolAnnotations(title="Forget a memory", destructive_hint=True))
    async def forget_memory(memory_id: MemoryId, ctx: Context) -> str:
        """Delete one memory (a tombstone: its history keeps the old value)."""
        await _call(client_for(ctx).delete(memory_id))
        return f"forgot {memory_id}"

    @server.tool(annotations=_read_only("Memory history"))
    async def memory_history(memory_id: MemoryId, ctx: Context) -> list[MemoryHistoryEntry]:
        """Every change of the memory (add, update, delete, ...), oldest first."""
        return await _call(client_for(ctx).history(memory_id))

    async def recent(client: AsyncMemoryClient, **ids: str | None) -> str:
        page = await _call(client.get_all(limit=50, **ids))
        return json.dumps([m.model_dump(mode="json") for m in page.data], ensure_ascii=False)

    @server.resource(
        "memsvc://users/{user_id}/memories",
        mime_type="application/json",
        description="The user's 50 most recent memories.",
    )
    async def user_memories(user_id: str, ctx: Context) -> str:
        return await recent(client_for(ctx), user_id=user_id)

    @server.resource(
        "memsvc://agents/{agent_id}/memories",
        mime_type="application/json",
        description="The agent's 50 most recent memories.",
    )
    async def agent_memories(agent_id: str, ctx: Context) -> str:
        return await recent(client_for(ctx), agent_id=agent_id)

    @server.resource(
        "memsvc://sessions/{session_id}/memories",
        mime_type="application/json",
        description="The session's 50 most recent memories.",
    )
    async def session_memories(session_id: str, ctx: Context) -> str:
        return await recent(client_for(ctx), session_id=session_id)

    if scope.any:  # a fixed client (stdio): the default scope's memories, without arguments

        @server.resource(
            "memsvc://memories/recent",
            mime_type="application/json",
            description="The 50 most recent memories of the default scope.",
        )
        async def default_memories() -> str:
            return await recent(
                client_for(None),
                user_id=scope.user_id,
                agent_id=scope.agent_id,
                session_id=scope.session_id,
            )

    return server
