"""The recall playground, jobs and sessions, KV containers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.ui.app import UiDep, render
from memsvc.errors import InvalidRequestError
from memsvc.schemas import ContextRequest, MemoryFilter, SearchRequest

__all__ = ["router"]

router = APIRouter()

Text = Annotated[str, Query(max_length=200)]


def parse_as_of(text: str) -> datetime | None:
    """An ``<input type=datetime-local>`` value (no zone: read as UTC) or full ISO 8601."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidRequestError(f"as_of: not a date and time: {text!r}", field="as_of") from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@router.get("/recall")
def recall(
    ui: UiDep,
    q: Annotated[str, Query(max_length=4000)] = "",
    user_id: Text = "",
    agent_id: Text = "",
    session_id: Text = "",
    top_k: Annotated[int, Query(ge=1, le=100)] = 10,
    budget: Annotated[int, Query(ge=32, le=32768)] = 512,
    as_of: Text = "",
    fusion: Literal["", "weighted", "rrf"] = "",
) -> Response:
    """A query over a scope: ranked results with each retriever's score and the fused one,
    their exchange context, and the prompt block ``POST /v1/context`` gives for the budget."""
    scope = {"user_id": user_id or None, "agent_id": agent_id or None}
    when = parse_as_of(as_of)
    found = block = None
    if q:
        request = SearchRequest(
            query=q,
            filters=MemoryFilter(**scope, session_id=session_id or None, as_of=when),
            top_k=top_k,
            fusion=fusion or None,
        )
        found = ui.service.recall.search(ui.tenant_id, request)
        block = ui.service.recall.context(
            ui.tenant_id,
            ContextRequest(**scope, session_id=session_id or None, query=q, token_budget=budget),
        )
    form = {
        "q": q,
        "user_id": user_id,
        "agent_id": agent_id,
        "session_id": session_id,
        "top_k": top_k,
        "budget": budget,
        "as_of": as_of,
        "fusion": fusion,
    }
    return render(ui, ui.request, "recall.html", form=form, found=found, block=block, as_of=when)


@router.get("/jobs")
def jobs(ui: UiDep) -> Response:
    """Recent consolidation (and training) jobs: trigger, step, counts, errors, duration;
    and the sessions with their state."""
    recent = ui.service.jobs.list(ui.tenant_id, limit=100)
    sessions = ui.service.sessions.list(ui.tenant_id, limit=200).data
    return render(ui, ui.request, "jobs.html", jobs=recent, sessions=sessions)


@router.get("/kv")
def kv(ui: UiDep) -> Response:
    """Stored cartridges and episodic caches: model fingerprint, codec, bits, bytes, age."""
    page = ui.service.kv.list(ui.tenant_id, limit=200)
    return render(ui, ui.request, "kv.html", items=page.data, truncated=bool(page.next_cursor))
