"""Episodic KV caches: ``PUT /v1/sessions/{id}/kv``, ``/v1/kv/lookup`` and ``/v1/kv/{id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ServiceDep, TenantDep
from api.uploads import json_object_param, receive_container
from memsvc.schemas import KVKind, KVLookupRequest, KVLookupResult, KVPublic, Page
from memsvc.service.kv import KVContent, resolve_spec

router = APIRouter(tags=["kv"])

MEDIA_TYPE = "application/octet-stream"


def content_response(content: KVContent) -> Response:
    """A stored container as the response body, streamed from the blob opened for it."""
    headers = {
        "ETag": f'"{content.kv.sha256}"',
        "X-Memsvc-Kv-Id": content.kv.id,
        "Content-Length": str(content.kv.size_bytes),
    }
    return StreamingResponse(content.chunks(), media_type=MEDIA_TYPE, headers=headers)


@router.put("/sessions/{session_id}/kv")
async def put_session_kv(
    session_id: str,
    request: Request,
    principal: TenantDep,
    service: ServiceDep,
    episode_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    spec: Annotated[str | None, Query(description="Compress a raw container server-side.")] = None,
    metadata: Annotated[str | None, Query(description="A JSON object.")] = None,
) -> KVPublic:
    """Store (replace) the KV cache of a session, or of one of its episodes. The body is a
    container whose origin names the session and whose manifest carries the token chain."""
    codec = resolve_spec(spec)
    meta = json_object_param(metadata, "metadata")
    path, digest = await receive_container(request, service)
    return await run_in_threadpool(
        service.store_kv_file,
        principal.tenant_id,
        path,
        kind="episodic",
        session_id=session_id,
        episode_id=episode_id,
        spec=codec,
        metadata=meta,
        digest=digest,
    )


@router.post("/kv/lookup")
def lookup_kv(body: KVLookupRequest, principal: TenantDep, service: ServiceDep) -> KVLookupResult:
    """The stored cache covering the longest prefix of ``token_ids`` for this model."""
    return service.lookup_kv(principal.tenant_id, body)


@router.get("/kv")
def list_kv(
    principal: TenantDep,
    service: ServiceDep,
    kind: KVKind | None = None,
    model_id: str | None = None,
    session_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[KVPublic]:
    return service.list_kv(
        principal.tenant_id,
        kind=kind,
        model_id=model_id,
        session_id=session_id,
        limit=limit,
        cursor=cursor,
    )


@router.get("/kv/{kv_id}")
def get_kv(kv_id: str, principal: TenantDep, service: ServiceDep) -> KVPublic:
    return service.get_kv(principal.tenant_id, kv_id)


@router.get("/kv/{kv_id}/content", response_class=Response)
def get_kv_content(kv_id: str, principal: TenantDep, service: ServiceDep) -> Response:
    """The container file, streamed (``application/octet-stream``)."""
    return content_response(service.open_kv_content(principal.tenant_id, kv_id))


@router.delete("/kv/{kv_id}", status_code=204)
def delete_kv(kv_id: str, principal: TenantDep, service: ServiceDep) -> None:
    service.delete_kv(principal.tenant_id, kv_id)
