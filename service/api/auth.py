"""Who is calling: ``Authorization: Bearer <key>`` on every route but the health probes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from db.models import Scope
from service.api.ratelimit import TokenBuckets, retry_after
from service.core.context import client_var
from service.core.errors import Forbidden, RateLimited, Unauthorized
from service.registry import clients
from service.registry.clients import Principal

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hm_…`")


async def current_client(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    key = credentials.credentials.strip() if credentials is not None else ""
    return await authenticate(request, key, missing="send your API key as `Authorization: Bearer <key>`")


async def authenticate(request: Request, key: str, *, missing: str) -> Principal:
    """The client of ``key``, within its rate; Unauthorized (``missing`` when there is no key) or RateLimited."""
    settings = request.app.state.settings
    buckets: TokenBuckets = request.app.state.rate_limits
    try:
        if not key:
            raise Unauthorized(missing, code="no_key")
        recent: clients.RecentKeys = request.app.state.recent_keys
        kept = recent.kept(key, settings.pepper)  # no I/O: a key seen a moment ago
        principal = kept if kept is not None else await run_in_threadpool(_authenticate, request, key, settings.pepper)
    except Unauthorized:
        # Guessing keys costs a guesser its own rate, by address.
        address = request.client.host if request.client else "unknown"
        wait = buckets.take(f"unauthenticated {address}")
        if wait:
            raise RateLimited("too many requests without a valid key", retry_after_s=retry_after(wait)) from None
        raise
    if (acted_for := request.headers.get("x-on-behalf-of")) is not None:
        principal = await _acting_for(request, principal, acted_for)
    return admit(request, principal)  # a delegate's calls count against the client it acts for


def admit(request: Request, principal: Principal) -> Principal:
    """``principal``, making this call within its rate (else RateLimited), bound to the call's events and logs."""
    buckets: TokenBuckets = request.app.state.rate_limits
    wait = buckets.take(principal.name)
    if wait:
        rate = request.app.state.settings.rate_limit_per_s
        raise RateLimited(
            f"client {principal.name} sends more than {rate:g} requests a second", retry_after_s=retry_after(wait)
        )
    client_var.set(principal.name)  # for the tracker's events and the log lines
    request.state.client = principal.name
    return principal


async def _acting_for(request: Request, delegate: Principal, name: str) -> Principal:
    """``X-On-Behalf-Of: <client>``: a key with the delegate scope acts as that client — its scopes,
    its zones, its requests and idempotency keys — and as nothing by itself (docs/security.md)."""
    if not delegate.may(Scope.delegate):
        raise Forbidden(
            f"client {delegate.name} may not act for another client (it lacks the delegate scope)",
            code="scope_missing",
        )
    engine = request.app.state.engine
    recent: clients.RecentKeys = request.app.state.recent_keys
    acting = await run_in_threadpool(recent.acting_for, lambda: Session(engine), name.strip())
    request.state.delegate = delegate.name
    return acting


def _authenticate(request: Request, key: str, pepper: bytes) -> Principal:
    engine = request.app.state.engine
    recent: clients.RecentKeys = request.app.state.recent_keys
    return recent.authenticate(lambda: Session(engine), key, pepper)


ClientDep = Annotated[Principal, Depends(current_client)]
