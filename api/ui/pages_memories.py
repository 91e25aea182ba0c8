"""Scopes, one scope's timeline, one memory (provenance, history, validity), delete/restore."""

from __future__ import annotations

from typing import Annotated, Any, get_args
from urllib.parse import quote

from fastapi import APIRouter, Form, Query
from fastapi.responses import RedirectResponse, Response

from api.ui import session as ui_session
from api.ui.app import UiContext, UiDep, render
from api.ui.views import VALIDITIES, parse_metadata_value, validity
from memsvc.errors import NotFoundError
from memsvc.schemas import EventFilter, MemoryFilter, MemoryKind, MemoryPublic

__all__ = ["router"]

router = APIRouter()

KINDS = get_args(MemoryKind)
TIMELINE_LIMIT = 1000  # one page of the listing: the newest memories of the scope
CONVERSATION_LIMIT = 1000
AROUND = 3  # turns shown either side of a provenance event

Text = Annotated[str, Query(max_length=200)]


def _scope(user_id: str, agent_id: str, session_id: str) -> dict[str, str | None]:
    return {
        "user_id": user_id or None,
        "agent_id": agent_id or None,
        "session_id": session_id or None,
    }


@router.get("/")
def scopes(ui: UiDep) -> Response:
    """Who has memories here: users, agents and sessions with their counts and states."""
    summary = ui.service.memories.scopes(ui.tenant_id)
    sessions = ui.service.sessions.list(ui.tenant_id, limit=200).data
    return render(ui, ui.request, "scopes.html", summary=summary, sessions=sessions)


@router.get("/timeline")
def timeline(
    ui: UiDep,
    user_id: Text = "",
    agent_id: Text = "",
    session_id: Text = "",
    kind: Text = "",
    state: Text = "",
    meta_key: Text = "",
    meta_value: Text = "",
) -> Response:
    """One scope's memories by event time, filtered by kind, validity and a metadata value."""
    scope = _scope(user_id, agent_id, session_id)
    metadata = {meta_key: parse_metadata_value(meta_value)} if meta_key else None
    filters = MemoryFilter(
        **scope, kind=kind or None, metadata=metadata, include_archived=True
    )  # validated like a REST query: a bad kind or metadata key is a 400 naming it
    page = ui.service.memories.list(ui.tenant_id, filters, limit=TIMELINE_LIMIT)
    memories = [m for m in page.data if not state or validity(m, ui.now) == state]
    memories.sort(key=lambda m: (m.occurred_at, m.created_at))
    return render(
        ui,
        ui.request,
        "timeline.html",
        scope=scope,
        memories=memories,
        truncated=page.next_cursor is not None,
        limit=TIMELINE_LIMIT,
        kinds=KINDS,
        validities=VALIDITIES,
        selected={"kind": kind, "state": state, "meta_key": meta_key, "meta_value": meta_value},
    )


def _conversation(ui: UiContext, memory: MemoryPublic) -> tuple[list[Any], list[str]]:
    """The turns of the memory's conversation around its provenance events, and the
    provenance ids not found in it."""
    sources = set(memory.source_event_ids)
    if not memory.session_id or not sources:
        return [], sorted(sources)
    events = ui.service.events.list(
        ui.tenant_id, EventFilter(session_id=memory.session_id), limit=CONVERSATION_LIMIT
    ).data
    marked = [i for i, e in enumerate(events) if e.id in sources]
    keep = {j for i in marked for j in range(i - AROUND, i + AROUND + 1)}
    shown = [(e, e.id in sources) for i, e in enumerate(events) if i in keep]
    missing = sorted(sources - {e.id for e in events})
    return shown, missing


@router.get("/memories/{memory_id}")
def memory(ui: UiDep, memory_id: str) -> Response:
    """One memory: text, scope, validity window, provenance in its conversation, history.
    A deleted memory still shows its history (the tombstone keeps it)."""
    history = ui.service.memories.history(ui.tenant_id, memory_id)  # 404 if it never was
    try:
        found: MemoryPublic | None = ui.service.memories.get(ui.tenant_id, memory_id)
    except NotFoundError:
        found = None
    conversation, missing = _conversation(ui, found) if found else ([], [])
    return render(
        ui,
        ui.request,
        "memory.html",
        memory_id=memory_id,
        memory=found,
        history=history,
        conversation=conversation,
        missing=missing,
    )


_ACTIONS = {
    "delete": "Delete this memory? It leaves search at once; its history keeps the old value.",
    "restore": "Restore this archived memory into default search, at full strength?",
}


@router.get("/memories/{memory_id}/{action}")
def confirm(ui: UiDep, memory_id: str, action: str) -> Response:
    """The confirmation step of delete / restore (a page, so no script is needed)."""
    if action not in _ACTIONS:
        raise NotFoundError(f"no action {action}")
    found = ui.service.memories.get(ui.tenant_id, memory_id)
    return render(
        ui, ui.request, "confirm.html", memory=found, action=action, question=_ACTIONS[action]
    )


@router.post("/memories/{memory_id}/{action}")
def act(
    ui: UiDep, memory_id: str, action: str, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    """Delete or restore, through the same service calls as REST; then back to the memory."""
    ui_session.check_csrf(ui.key, csrf)
    if action == "delete":
        ui.service.memories.delete(ui.tenant_id, memory_id, actor=ui.principal.actor)
    elif action == "restore":
        ui.service.memories.restore(ui.tenant_id, memory_id, actor=ui.principal.actor)
    else:
        raise NotFoundError(f"no action {action}")
    return RedirectResponse(f"/ui/memories/{quote(memory_id, safe='')}", status_code=303)
