"""Request id and access log for every HTTP request, as plain ASGI middleware."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from service.api.asgi import HttpMiddleware
from service.api.problems import problem
from service.core.context import bound_request_id, parse_request_id

logger = logging.getLogger("service.api.access")

HEADER = "x-request-id"


class RequestIdMiddleware(HttpMiddleware):
    """Takes X-Request-ID when it is a UUID (or makes one), binds it for the log lines, returns it."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = parse_request_id(given) or uuid.uuid4()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started_response = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                MutableHeaders(scope=message)[HEADER] = str(request_id)
            await send(message)

        with bound_request_id(str(request_id)):
            if given is not None and parse_request_id(given) is None:
                logger.warning("ignored X-Request-ID that is not a UUID; using %s", request_id)
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                # Rendered here, inside the request id, rather than by Starlette's outer
                # ServerErrorMiddleware, which would answer without it.
                logger.exception("unexpected error while answering %s %s", scope["method"], scope["path"])
                if started_response:
                    raise
                response = problem(
                    500, "an unexpected error occurred; quote the request id when reporting it", code="internal"
                )
                await response(scope, receive, send_with_id)
            finally:
                logger.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={"http_status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 2)},
                )
