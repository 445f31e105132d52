"""HTTP metrics of the API process: requests by method, route and status, and their latency.

The route is the template (``/api/v1/records/{name}/{type}``), never the path a client sent,
and the method one of HTTP's own (anything else counts as ``OTHER``), so the number of series
stays bounded whatever a client sends; a path no route matched counts as ``unmatched``.
Counters live in this process's registry: with ``--workers N`` each uvicorn process counts
its own share (scrape every pod; rates add up).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import Message, Receive, Scope, Send

from service.api.asgi import HttpMiddleware

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "hostmaster_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "hostmaster_http_request_duration_seconds",
    "Time from a request's arrival to its answer's start, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)


class HttpMetricsMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_count(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                LATENCY.labels(_method(scope), _route(scope)).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            REQUESTS.labels(_method(scope), _route(scope), str(status)).inc()


def exposition() -> str:
    return generate_latest(REGISTRY).decode()


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def _method(scope: Scope) -> str:
    """The method as a label: a client may send any token as its method, a label may not grow with it."""
    method = str(scope.get("method", ""))
    return method if method in METHODS else "OTHER"


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
