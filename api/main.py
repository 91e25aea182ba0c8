"""The FastAPI app factory: mounts the routers under ``/v1`` and owns the service's life."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from api.errors import ERROR_RESPONSES, install_error_handlers
from api.guards import RequestGuard, check_params
from api.idempotency import IdempotencyMiddleware, claim_idempotency_key
from api.mem0 import router as mem0_router
from api.observability import ObservabilityMiddleware
from api.routes import health, metrics
from api.routes.operations import operation_routers
from api.ui.app import create_ui
from memsvc.service import MemoryService
from memsvc.settings import Settings, get_settings

__all__ = ["create_app"]

api_router = APIRouter()
for router in operation_routers():
    api_router.include_router(router)


def _operation_id(route: APIRoute) -> str:
    # Stable ids ({tag}-{name}) keep the OpenAPI spec and generated clients stable.
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _mount_mcp(app: FastAPI) -> Callable[[], AbstractAsyncContextManager[None]]:
    """``/mcp`` when the MCP SDK is installed (``memsvc[mcp]``); without it, no route. Returns
    what gives each start of the app's lifespan the context that runs it."""
    try:
        from api.mcp import mount_mcp
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "mcp":
            raise
        return nullcontext
    return mount_mcp(app)


def create_app(
    settings: Settings | None = None,
    *,
    service: MemoryService | None = None,
    service_factory: Callable[[Settings], MemoryService] | None = None,
) -> FastAPI:
    """The app over ``service`` (kept open by its owner), or over one ``service_factory``
    builds at start-up and closes at shutdown: the composition root passes
    ``consolidation.dispatch.build_service`` (the API never imports the workers' package)."""
    if service is None and service_factory is None:
        raise TypeError("create_app needs a service or a service_factory")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = service is None
        if own:
            app.state.service = service_factory(settings or get_settings())  # type: ignore[misc]
        if own:
            app.state.service.warm_up()
            app.state.service.start_background()
        try:
            async with mcp_running():
                yield
        finally:
            if own:
                app.state.service.close()

    app = FastAPI(
        title="memsvc",
        version="0.1.0",
        description="Long-term memory for LLM applications.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        dependencies=[Depends(check_params)],  # path and query strings (api/guards.py)
    )
    if service is not None:
        app.state.service = service
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware)  # Idempotency-Key on writes (api/idempotency.py)
    # Added last, so outermost of ours: the body limit counts what the idempotency check reads
    # too, and an exception from anything inside is a JSON 500 on a connection that stays.
    limits = settings or (service.settings if service is not None else get_settings())
    app.add_middleware(RequestGuard, max_body_bytes=limits.max_body_bytes)
    # Outermost: every response gets X-Request-ID, its metrics and its access line, a 413 or
    # a JSON 500 of the guard included.
    app.add_middleware(ObservabilityMiddleware, record_metrics=limits.metrics.enabled)
    app.include_router(health.router)
    mcp_running = _mount_mcp(app)
    app.include_router(metrics.router)
    # Every /v1 write sent with an Idempotency-Key holds it while it runs (api/idempotency.py).
    app.include_router(
        api_router,
        prefix="/v1",
        dependencies=[Depends(claim_idempotency_key)],
        responses=ERROR_RESPONSES,
    )
    # mem0ai's client, unmodified, against the same operations (api/mem0, README).
    app.include_router(mem0_router, prefix="/mem0")
    # The web inspector (api/ui): server-rendered pages over the same service and tenant keys.
    app.mount("/ui", create_ui(app), name="ui")
    return app
