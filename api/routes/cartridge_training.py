"""``POST /v1/cartridges/train``: train a KV cartridge on a corpus as a background job."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep, TenantDep
from memsvc.schemas import JobPublic
from memsvc.schemas.cartridge_train import CartridgeTrainRequest

router = APIRouter(prefix="/cartridges", tags=["cartridges"])


@router.post("/train", status_code=202)
def train_cartridge(
    body: CartridgeTrainRequest, principal: TenantDep, service: ServiceDep
) -> JobPublic:
    """Self-study + distillation on ``corpus``; progress in ``GET /v1/jobs/{id}``, the stored
    cartridge's id in the finished job's ``scope.kv_id``."""
    return service.train_cartridge(principal.tenant_id, body)
