"""The service layer: ``MemoryService`` and the capabilities it is made of.

Built by a composition root (``consolidation.dispatch.build_service``), reached by the REST
routes and the embedded ``Memory`` through ``memsvc.service.handlers``.
"""

from memsvc.service.core import MemoryService
from memsvc.service.deps import ServiceDeps
from memsvc.service.idempotency import IdempotentRequest
from memsvc.service.tenants import LOCAL_TENANT_ID, Principal

__all__ = ["LOCAL_TENANT_ID", "IdempotentRequest", "MemoryService", "Principal", "ServiceDeps"]
