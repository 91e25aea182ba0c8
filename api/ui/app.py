"""The inspector: a small server-rendered app mounted at ``/ui`` of the API.

It is one more door over the service, like REST: every page reads through the service's
capabilities (``service.memories``, ``service.recall``, ...), with the tenant principal of the
key in the session cookie (:mod:`api.ui.session`). Jinja2 renders every value escaped
(autoescape on for every template); the pages carry no script at all, and the
Content-Security-Policy forbids any, so text that looks like markup can only ever be text.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.guards import check_params
from api.ui import session as ui_session
from api.ui.session import KEY_COOKIE, NotLoggedIn
from api.ui.views import age, human_bytes, pretty_json, validity
from memsvc.errors import APIStatusError, AuthError, PermissionDeniedError
from memsvc.service import MemoryService, Principal

__all__ = ["CSP", "UiContext", "UiDep", "create_ui", "render"]

HERE = Path(__file__).parent

#: No script, no inline style, nothing from elsewhere; forms post only here; never framed.
CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # ids in URLs stay here
    (b"cache-control", b"no-store"),  # tenant data is not kept by shared caches
]

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every {{ value }} escaped, whatever the template's name
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(validity=validity, age=age, human_bytes=human_bytes, pretty_json=pretty_json)


class SecurityHeaders:
    """Adds the CSP and friends to every response of the inspector, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


class UiContext:
    """Who is looking (the tenant principal of the session's key) and with which service."""

    def __init__(self, request: Request, service: MemoryService, principal: Principal, key: str):
        self.request, self.service, self.principal = request, service, principal
        self.csrf = ui_session.csrf_token(key)
        self.key = key
        self.now = datetime.now(UTC)

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id  # type: ignore[return-value]


def _service(request: Request) -> MemoryService:
    return request.app.state.parent.state.service


async def _context(request: Request) -> UiContext:
    service = _service(request)
    key = request.cookies.get(KEY_COOKIE)
    try:
        principal = await ui_session.authenticate(service, key)
    except (AuthError, PermissionDeniedError) as exc:
        raise NotLoggedIn from exc
    limiter = service.deps.rate_limiter
    if limiter.enabled:  # the same per-key limit as REST
        await run_in_threadpool(limiter.check, principal.key_id)
    return UiContext(request, service, principal, key or "")


UiDep = Annotated[UiContext, Depends(_context)]


def render(ui: UiContext | None, request: Request, name: str, status: int = 200, **values: Any):
    """The page ``name`` with ``values``; every value is escaped by the template engine."""
    html = _env.get_template(name).render(
        request=request,
        csrf=ui.csrf if ui else None,
        tenant=ui.tenant_id if ui else None,
        now=ui.now if ui else datetime.now(UTC),
        **values,
    )
    return HTMLResponse(html, status_code=status)


def _login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    page = render(None, request, "login.html", status, error=error, login_token=token)
    ui_session.new_login_token(page, request, token)
    return page


def _install_errors(ui: FastAPI) -> None:
    @ui.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, exc: NotLoggedIn) -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        ui_session.forget_key(response, request)
        return response

    @ui.exception_handler(APIStatusError)
    async def refused(request: Request, exc: APIStatusError) -> Response:
        return render(None, request, "error.html", exc.status_code, message=exc.message)

    @ui.exception_handler(RequestValidationError)
    @ui.exception_handler(ValidationError)
    async def invalid(request: Request, exc: Exception) -> Response:
        errors = exc.errors() if hasattr(exc, "errors") else []
        lines = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'query')}: {e.get('msg')}"
            for e in errors
        ]
        return render(None, request, "error.html", 400, message="; ".join(lines) or str(exc))

    @ui.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return render(None, request, "error.html", exc.status_code, message=str(exc.detail))


def create_ui(parent: FastAPI) -> FastAPI:
    """The inspector app, to mount at ``/ui`` of ``parent`` (whose state holds the service)."""
    from api.ui import pages_graph, pages_memories, pages_recall

    ui = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(check_params)],
    )
    ui.state.parent = parent
    ui.add_middleware(SecurityHeaders)
    _install_errors(ui)
    ui.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @ui.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        return _login_page(request)

    @ui.post("/login")
    async def login(
        request: Request,
        api_key: Annotated[str, Form(max_length=512)] = "",
        csrf: Annotated[str, Form(max_length=128)] = "",
    ) -> Response:
        ui_session.check_login_token(request, csrf)
        try:
            await ui_session.authenticate(_service(request), api_key.strip())
        except AuthError:
            return _login_page(request, 401, "That key is not a valid tenant key.")
        except PermissionDeniedError:
            return _login_page(request, 403, "The admin key has no tenant data; use a tenant key.")
        response = RedirectResponse("/ui/", status_code=303)
        ui_session.keep_key(response, request, api_key.strip())
        response.delete_cookie(ui_session.LOGIN_COOKIE, path="/ui")
        return response

    @ui.post("/logout")
    async def logout(
        request: Request, ui_ctx: UiDep, csrf: Annotated[str, Form(max_length=128)] = ""
    ) -> Response:
        ui_session.check_csrf(ui_ctx.key, csrf)
        response = RedirectResponse("/ui/login", status_code=303)
        ui_session.forget_key(response, request)
        return response

    for module in (pages_memories, pages_recall, pages_graph):
        ui.include_router(module.router)
    return ui
