"""``GET /metrics``: Prometheus text exposition (no tenant key; see docs/operations.md).

Open unless ``MEMSVC_METRICS__TOKEN`` is set, then it wants ``Authorization: Bearer <token>``
(constant-time compare). The families hold no tenant data but tenant ids as labels of the
per-tenant gauges; keep the endpoint on a private network or set the token.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Response

from api.deps import ServiceDep
from memsvc.errors import AuthError, NotFoundError
from memsvc.observability.metrics import CONTENT_TYPE, exposition
from memsvc.service.stats import StateCollector

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(service: ServiceDep, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Metrics of this API process (of every worker process in multiprocess mode)."""
    config = service.settings.metrics
    if not config.enabled:
        raise NotFoundError("metrics are turned off (MEMSVC_METRICS__ENABLED=false)")
    if config.token:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), config.token):
            raise AuthError("metrics need Authorization: Bearer <MEMSVC_METRICS__TOKEN>")
    body = exposition([StateCollector(service.deps)])
    return Response(body, media_type=CONTENT_TYPE)
