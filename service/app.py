"""The ASGI application: ``uv run uvicorn service.app:app`` (or ``python -m service``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from db.engine import make_engine
from service.api import (
    batch,
    changesets,
    clients,
    deadletters,
    health,
    metrics,
    problems,
    reconciliation,
    records,
    zones,
)
from service.api.common import install_body_schemas
from service.api.headers import SecurityHeadersMiddleware
from service.api.health import Readiness
from service.api.instrument import HttpMetricsMiddleware
from service.api.middleware import RequestIdMiddleware
from service.api.ratelimit import TokenBuckets
from service.console import install as install_console
from service.core.dispatch import Dispatcher, make_broker
from service.core.settings import Settings, get_settings
from service.registry import quotas
from service.registry.clients import RecentKeys
from service.requests.intake import Intake


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_dsn, connect_timeout_s=settings.database_timeout_s, pool_size=40)
        broker = make_broker(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.dispatcher = Dispatcher(broker, settings.queue_name)
        app.state.rate_limits = TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst)
        app.state.recent_keys = RecentKeys(settings.auth_cache_s, quota_defaults=quotas.defaults(settings))
        app.state.readiness = Readiness()
        app.state.intake = Intake.of(engine, app.state.dispatcher, settings)
        try:
            yield
        finally:
            broker.close()
            engine.dispose()

    app = FastAPI(
        title="Hostmaster",
        version="0.1.0",
        description="DNS provisioning: ask for records, follow each request to the answer DNS serves.",
        lifespan=lifespan,
        docs_url="/docs" if settings.serve_docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.serve_docs else None,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Location", "Retry-After"],
        )
    app.add_middleware(HttpMetricsMiddleware)  # inside the request id: a 500 rendered there is counted as 500
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: on the 500s RequestIdMiddleware renders too
    problems.install(app)
    install_body_schemas(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(records.router)
    app.include_router(changesets.router)
    app.include_router(batch.router)
    app.include_router(zones.router)
    app.include_router(reconciliation.router)
    app.include_router(clients.router)
    app.include_router(deadletters.router)
    install_console(app)
    return app


app = create_app()
