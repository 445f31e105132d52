"""Signing in to the console: the API key in a session cookie, and a form token against CSRF.

The cookie holds the key itself, so a revoked key ends every console session at once and a
signed-in browser may do exactly what the key may do. It is HttpOnly (no script reads it),
SameSite=Strict (no other site's page sends it), limited to /ui, Secure over HTTPS, and has no
expiry: it ends with the browser session. The key never appears in a URL or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from fastapi import Request, Response

from service.api.auth import authenticate
from service.clients import Principal
from service.errors import Forbidden, Unauthorized

COOKIE = "hostmaster_console"
PATH = "/ui"


class SignInNeeded(Exception):
    """No console session, or its key no longer opens anything: go to the sign-in page."""


async def principal_of(request: Request) -> Principal:
    """The client signed in to this browser session; SignInNeeded when none is."""
    key = request.cookies.get(COOKIE, "").strip()
    if not key:
        raise SignInNeeded
    try:
        principal = await authenticate(request, key, missing="sign in")
    except Unauthorized:
        raise SignInNeeded from None
    request.state.console_principal = principal  # for the error page's navigation
    return principal


async def sign_in(request: Request, key: str) -> Principal:
    """The client of ``key``: Unauthorized (and rate-limited guessing) like the API's bearer keys."""
    return await authenticate(request, key.strip(), missing="paste your API key to sign in")


def remember(response: Response, request: Request, key: str) -> None:
    settings = request.app.state.settings
    response.set_cookie(
        COOKIE,
        key.strip(),
        path=PATH,
        httponly=True,
        samesite="strict",
        # Behind a TLS proxy the scheme here may read http: outside dev the cookie is always Secure.
        secure=request.url.scheme == "https" or settings.app_env != "dev",
    )


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def form_token(request: Request) -> str:
    """The token every console form carries: derived from the signed-in key, unknown to other sites."""
    key = request.cookies.get(COOKIE, "")
    pepper: bytes = request.app.state.settings.pepper
    return hmac.new(pepper, b"console-form:" + key.encode(), hashlib.sha256).hexdigest()


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
