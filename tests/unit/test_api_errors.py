"""An unexpected error still answers problem+json with the request id, and no stack trace."""

from __future__ import annotations

import uuid

import anyio
import httpx
from fastapi import FastAPI

from service.api import problems
from service.api.headers import SecurityHeadersMiddleware
from service.api.middleware import RequestIdMiddleware


def app_that_fails() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    problems.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    return app


def test_an_unexpected_error_is_a_500_problem_carrying_the_request_id() -> None:
    request_id = str(uuid.uuid4())

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app_that_fails(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hostmaster.test") as client:
            return await client.get("/boom", headers={"X-Request-ID": request_id})

    answer = anyio.run(call)

    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == request_id
    body = answer.json()
    assert body["request_id"] == request_id
    assert body["code"] == "internal"
    assert "secret internals" not in answer.text
    assert "Traceback" not in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"  # the 500 is an answer like any other
