"""mem0's export calls. An export is not stored: its id carries its filters, and reading it
lists the caller's memories that match them now (with the caller's key, so an id never reaches
another tenant's data)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError

from api.deps import ServiceDep, TenantDep
from api.mem0 import shapes
from api.mem0.requests import MAX_EXPORT, ExportBody, ListBody, list_filter, walk
from memsvc.errors import InvalidRequestError

__all__ = ["router"]

router = APIRouter()


def _export_id(body: ExportBody) -> str:
    spec = {
        k: v
        for k, v in body.model_dump(
            include={"user_id", "agent_id", "run_id", "app_id", "filters"}
        ).items()
        if v is not None
    }
    raw = json.dumps(spec, separators=(",", ":"), sort_keys=True).encode()
    return "exp_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _export_spec(export_id: str) -> ExportBody:
    bad = InvalidRequestError(
        "memory_export_id is not an export of this API", field="memory_export_id"
    )
    if not export_id.startswith("exp_") or len(export_id) > 8192:
        raise bad
    data = export_id.removeprefix("exp_")
    try:
        spec = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        return ExportBody.model_validate(spec)
    except (ValueError, binascii.Error, ValidationError) as exc:
        raise bad from exc


@router.post("/v1/exports/")
def create_memory_export(
    body: ExportBody, principal: TenantDep, service: ServiceDep
) -> dict[str, Any]:
    """mem0 ``create_memory_export``. The schema is not applied (no LLM restructuring): the
    export holds the matching memories in mem0's memory shape."""
    list_filter(ListBody.model_validate(body.model_dump(exclude={"schema_", "memory_export_id"})))
    return {
        "message": "Memory export request received. The export is ready now.",
        "id": _export_id(body),
    }


@router.post("/v1/exports/get/")
def get_memory_export(
    body: ExportBody, principal: TenantDep, service: ServiceDep
) -> dict[str, Any]:
    spec = _export_spec(body.memory_export_id) if body.memory_export_id else body
    listing = ListBody.model_validate(spec.model_dump(exclude={"schema_", "memory_export_id"}))
    memories, more = walk(service, principal, list_filter(listing), MAX_EXPORT)
    if more:
        raise InvalidRequestError(
            f"the export matches more than {MAX_EXPORT} memories; narrow its filters",
            field="filters",
        )
    return {
        "id": body.memory_export_id or _export_id(spec),
        "status": "completed",
        "count": len(memories),
        "memories": [shapes.memory(m) for m in memories],
    }
