"""Security headers on every answer (plain ASGI middleware)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from service.api.asgi import HttpMiddleware

API_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
# The interactive docs load their script and styles from a CDN.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; frame-ancestors 'none'"
)
# The console (/ui) loads its own script and styles, nothing from elsewhere, and posts only to itself.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        docs = path in ("/docs", "/redoc") or path.startswith("/docs/")
        console = path == "/ui" or path.startswith("/ui/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in API_HEADERS.items():
                    headers.setdefault(name, value)
                if docs:
                    headers["content-security-policy"] = DOCS_CSP
                elif console:
                    headers["content-security-policy"] = CONSOLE_CSP
                    # Forms then carry their real Origin to us (no-referrer makes it "null"), another site's "null".
                    headers["referrer-policy"] = "same-origin"
            await send(message)

        await self.app(scope, receive, send_with_headers)
