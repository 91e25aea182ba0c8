"""The inspector's login session and CSRF tokens, with no state on the server.

The session cookie holds the tenant's API key itself (the issue's "a login form that keeps it
in a session cookie"): ``HttpOnly`` (no script can read it), ``SameSite=Strict`` (no other site
can make the browser send it), ``Path=/ui`` (never sent to ``/v1``), ``Secure`` over HTTPS.
Every request authenticates the key again through the service's ``Tenants``, exactly like REST,
so a revoked key ends its inspector sessions too, and any number of replicas agree without a
shared session store or a secret to distribute.

CSRF: every form that changes something carries ``csrf`` = HMAC-SHA256(key, purpose); another
site can neither read the cookie nor compute the token. The login form (before any key) uses a
double-submit token: a random value in its own ``HttpOnly`` cookie and in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from memsvc.errors import AuthError, PermissionDeniedError
from memsvc.service import MemoryService, Principal

__all__ = [
    "KEY_COOKIE",
    "LOGIN_COOKIE",
    "NotLoggedIn",
    "authenticate",
    "check_csrf",
    "check_login_token",
    "csrf_token",
    "forget_key",
    "keep_key",
    "new_login_token",
]

KEY_COOKIE = "memsvc_ui_key"
LOGIN_COOKIE = "memsvc_ui_login"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 12 * 3600
_CSRF_PURPOSE = b"memsvc-ui-csrf-v1"


class NotLoggedIn(Exception):
    """No usable key in the session cookie: the page answers with the login form."""


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def authenticate(service: MemoryService, raw_key: str | None) -> Principal:
    """The tenant principal of a key, by the same lookup REST uses; the admin key is refused
    (it has no tenant data)."""
    if not raw_key:
        raise AuthError("no API key")
    principal = service.tenants.cached_principal(raw_key)
    if principal is None:  # a database lookup: off the event loop
        principal = await run_in_threadpool(service.tenants.authenticate, raw_key)
    if principal.tenant_id is None:
        raise PermissionDeniedError("the admin key manages tenants; use a tenant's key")
    return principal


def keep_key(response: Response, request: Request, raw_key: str) -> None:
    response.set_cookie(
        KEY_COOKIE,
        raw_key,
        max_age=SESSION_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def forget_key(response: Response, request: Request) -> None:
    response.delete_cookie(
        KEY_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )


def csrf_token(raw_key: str) -> str:
    """The token the forms of this session carry (derived from its key: no state)."""
    return hmac.new(raw_key.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


def check_csrf(raw_key: str, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(sent, csrf_token(raw_key)):
        raise PermissionDeniedError("missing or wrong CSRF token; reload the page and retry")


def new_login_token(response: Response, request: Request, token: str | None = None) -> str:
    """A fresh double-submit token for the login form, set as its cookie on ``response``."""
    token = token or secrets.token_urlsafe(32)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return token


def check_login_token(request: Request, sent: str | None) -> None:
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not sent or not cookie or not hmac.compare_digest(sent, cookie):
        raise PermissionDeniedError("missing or wrong CSRF token; reload the login page")
