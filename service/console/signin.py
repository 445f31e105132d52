"""Signing in to the console: a server-side session in a cookie, and a form token against CSRF.

The API key is checked once, at sign-in, and never leaves the server again: the cookie holds the
token of a session (service/console/sessions.py) that expires (``HOSTMASTER_CONSOLE_SESSION_MINUTES``)
and that signing out, a key rotation or a revocation ends at once. Served over HTTPS — and always
outside dev, where a TLS proxy may hide the scheme — the cookie is ``__Host-hostmaster_console``:
``Secure``, ``Path=/``, no ``Domain``, so no other host or plain-HTTP page can set or read it.
On plain HTTP in dev (``make run`` on 127.0.0.1) it is ``hostmaster_console`` on ``/ui``, since a
browser keeps no ``Secure`` cookie there. Either way ``HttpOnly`` (no script reads it) and
``SameSite=Strict`` (no other site's page sends it). The API itself takes bearer keys only and
ignores cookies, so the cookie reaching ``/api`` opens nothing there.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from service.api.auth import admit, authenticate
from service.console import sessions
from service.core.errors import Forbidden
from service.registry import quotas
from service.registry.clients import Principal

COOKIE = "hostmaster_console"
SECURE_COOKIE = "__Host-hostmaster_console"
PATH = "/ui"


class SignInNeeded(Exception):
    """No console session, or it no longer opens anything: go to the sign-in page."""


async def principal_of(request: Request) -> Principal:
    """The client signed in to this browser session (within its rate); SignInNeeded when none is."""
    token = _token(request)
    if not token:
        raise SignInNeeded
    engine = request.app.state.engine
    defaults = quotas.defaults(request.app.state.settings)

    def read() -> Principal | None:
        with Session(engine) as session:
            return sessions.client_of(session, token, defaults)

    principal = await run_in_threadpool(read)
    if principal is None:
        raise SignInNeeded
    principal = admit(request, principal)
    request.state.console_principal = principal  # for the error page's navigation
    return principal


async def sign_in(request: Request, response: Response, key: str) -> Principal:
    """Check ``key`` like the API's bearer keys (Unauthorized, and rate-limited guessing), then
    open a session for its client and set the session's cookie on ``response``."""
    principal = await authenticate(request, key.strip(), missing="paste your API key to sign in")
    settings = request.app.state.settings
    lifetime = timedelta(minutes=settings.console_session_minutes)
    engine = request.app.state.engine

    def open_one() -> str:
        with Session(engine) as session:
            return sessions.open_session(session, principal.name, lifetime)

    token = await run_in_threadpool(open_one)
    secure = _secure(request)
    response.set_cookie(
        SECURE_COOKIE if secure else COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        path="/" if secure else PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    return principal


async def sign_out(request: Request, response: Response) -> None:
    """End this browser's session on the server, and drop its cookie."""
    if token := _token(request):
        engine = request.app.state.engine

        def close() -> None:
            with Session(engine) as session:
                sessions.close(session, token)

        await run_in_threadpool(close)
    secure = _secure(request)
    response.delete_cookie(
        SECURE_COOKIE if secure else COOKIE,
        path="/" if secure else PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def form_token(request: Request) -> str:
    """The token every console form carries: derived from the session's token, unknown to other sites."""
    pepper: bytes = request.app.state.settings.pepper
    return hmac.new(pepper, b"console-form:" + _token(request).encode(), hashlib.sha256).hexdigest()


def check_form(request: Request, token: str) -> None:
    """Refuse a POST that did not come from one of our own pages."""
    if not hmac.compare_digest(token.encode("utf-8", "replace"), form_token(request).encode()):
        raise Forbidden("the form is stale or did not come from this console: reload the page", code="bad_form")
    check_origin(request)


def check_origin(request: Request) -> None:
    """Refuse a POST that another site's page sent (``Origin`` names another host, or is opaque)."""
    origin = request.headers.get("origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.url.netloc):
        raise Forbidden("the form was posted from another site", code="bad_origin")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    if target and target.startswith(PATH + "/") and "\\" not in target:
        return target
    return PATH + "/requests"


def _secure(request: Request) -> bool:
    # Behind a TLS proxy the scheme here may read http: outside dev the cookie is always Secure.
    return request.url.scheme == "https" or request.app.state.settings.app_env != "dev"


def _token(request: Request) -> str:
    return request.cookies.get(SECURE_COOKIE if _secure(request) else COOKIE, "").strip()
