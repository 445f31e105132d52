"""The API's HTTP metrics keep their label values bounded whatever a client sends."""

from __future__ import annotations

import asyncio
import random
import string
from typing import Any

from service.api.instrument import REGISTRY, HttpMetricsMiddleware, exposition


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 405, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _call(method: str) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    scope = {"type": "http", "method": method, "path": "/healthz", "headers": []}
    asyncio.run(HttpMetricsMiddleware(_answer)(scope, receive, send))


def test_a_method_is_a_label_only_when_it_is_one_of_http_s_own() -> None:
    before = len(exposition())
    made_up = ["".join(random.choices(string.ascii_uppercase, k=4096)) for _ in range(50)]
    for method in made_up:  # what an HTTP parser such as h11 hands on: any token
        _call(method)
    _call("GET")

    text = exposition()
    assert len(text) - before < 5_000, f"grew from {before} to {len(text)} bytes"
    assert not any(method in text for method in made_up)
    other = REGISTRY.get_sample_value(
        "hostmaster_http_requests_total", {"method": "OTHER", "route": "unmatched", "status": "405"}
    )
    assert other is not None
    assert other >= 50
    assert REGISTRY.get_sample_value(
        "hostmaster_http_requests_total", {"method": "GET", "route": "unmatched", "status": "405"}
    )
