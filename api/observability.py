"""Per-request observability (an ASGI middleware, outermost): request id, metrics, access log.

- ``X-Request-ID``: the caller's (when it is a safe token) or a new one, returned on every
  response and set as the current request (``memsvc.observability.context``) for log lines
  and the jobs the request starts.
- Metrics: ``memsvc_http_requests_total`` and ``memsvc_http_request_duration_seconds`` by
  method, route *template* (``/v1/memories/{memory_id}``, never the raw path: bounded
  cardinality; unmatched paths count as ``unmatched``) and status.
- One access line per request (logger ``memsvc.access``): route, status, duration, tenant.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memsvc.observability import metrics
from memsvc.observability.context import HEADER, request_scope

__all__ = ["ObservabilityMiddleware"]

access_log = logging.getLogger("memsvc.access")
_HEADER_KEY = HEADER.lower().encode()


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    # Operation routes carry their full template (/v1/...); the probes are mounted at the root.
    path = getattr(route, "memsvc_template", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObservabilityMiddleware:
    """Request id, request metrics and the access line of every HTTP request."""

    def __init__(self, app: ASGIApp, *, record_metrics: bool = True) -> None:
        self.app = app
        self.record_metrics = record_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for key, value in scope.get("headers", ()):
            if key == _HEADER_KEY:
                given = value.decode("latin-1")
                break
        start = time.perf_counter()
        status = 500
        elapsed: float | None = None
        with request_scope(given) as info:
            header = (_HEADER_KEY, info.request_id.encode())

            async def send_with_id(message: Message) -> None:
                nonlocal status, elapsed
                if message["type"] == "http.response.start":
                    status = message["status"]
                    elapsed = time.perf_counter() - start
                    message["headers"] = [*message.get("headers", ()), header]
                await send(message)

            try:
                await self.app(scope, receive, send_with_id)
            finally:
                duration = elapsed if elapsed is not None else time.perf_counter() - start
                route = _route_template(scope)
                info.route = route
                method = scope.get("method", "")
                if self.record_metrics:
                    labels = (method, route, str(status))
                    metrics.REQUESTS.labels(*labels).inc()
                    metrics.REQUEST_SECONDS.labels(*labels).observe(duration)
                if access_log.isEnabledFor(logging.INFO):
                    access_log.info(
                        "%s %s %d",
                        method,
                        route,
                        status,
                        extra={
                            "route": route,
                            "method": method,
                            "status": status,
                            "duration": round(duration, 6),
                        },
                    )
