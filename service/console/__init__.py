"""The web console under /ui: requests and their timelines, zones and records, queue health.

Server-rendered HTML (Jinja2) with a little JavaScript for live refresh; signed in with an API
key that the browser keeps in a session cookie and that sees only what the key may see.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    from service.console.routes import router

    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
