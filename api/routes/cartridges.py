"""``/v1/cartridges``: trained KV cartridges (upload, list, fetch, compose, delete)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ServiceDep, TenantDep
from api.routes.kv import content_response
from api.uploads import json_object_param, receive_container
from memsvc.schemas import CartridgeCompose, KVPublic, Page
from memsvc.service.kv import resolve_spec

router = APIRouter(prefix="/cartridges", tags=["cartridges"])

SpecParam = Annotated[
    str | None,
    Query(description="Compress a raw container server-side: a preset name or QuantSpec JSON."),
]


@router.post("", status_code=201)
async def push_cartridge(
    request: Request,
    principal: TenantDep,
    service: ServiceDep,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    spec: SpecParam = None,
    metadata: Annotated[str | None, Query(description="A JSON object.")] = None,
) -> KVPublic:
    """Upload a container (the body: a ``memsvc.kv`` safetensors file, streamed)."""
    codec = resolve_spec(spec)
    meta = json_object_param(metadata, "metadata")
    path, digest = await receive_container(request, service)
    return await run_in_threadpool(
        service.store_kv_file,
        principal.tenant_id,
        path,
        kind="cartridge",
        name=name,
        spec=codec,
        metadata=meta,
        digest=digest,
    )


@router.get("")
def list_cartridges(
    principal: TenantDep,
    service: ServiceDep,
    model_id: Annotated[str | None, Query(description="A model fingerprint id.")] = None,
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[KVPublic]:
    return service.list_kv(
        principal.tenant_id,
        kind="cartridge",
        model_id=model_id,
        name=name,
        limit=limit,
        cursor=cursor,
    )


@router.post("/compose", status_code=201)
def compose_cartridges(
    body: CartridgeCompose, principal: TenantDep, service: ServiceDep
) -> KVPublic:
    """Concatenate cartridges along tokens (same model fingerprint) into a new one."""
    return service.compose_cartridges(principal.tenant_id, body)


@router.get("/{cartridge_id}")
def get_cartridge(cartridge_id: str, principal: TenantDep, service: ServiceDep) -> KVPublic:
    return service.get_kv(principal.tenant_id, cartridge_id, kind="cartridge")


@router.get("/{cartridge_id}/content", response_class=Response)
def get_cartridge_content(cartridge_id: str, principal: TenantDep, service: ServiceDep) -> Response:
    """The container file, streamed (``application/octet-stream``)."""
    content = service.open_kv_content(principal.tenant_id, cartridge_id, kind="cartridge")
    return content_response(content)


@router.delete("/{cartridge_id}", status_code=204)
def delete_cartridge(cartridge_id: str, principal: TenantDep, service: ServiceDep) -> None:
    service.delete_kv(principal.tenant_id, cartridge_id, kind="cartridge")
