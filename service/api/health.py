"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import pika
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from service.api.deps import EngineDep, SettingsDep
from service.core.dispatch import broker_url
from service.core.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter()


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


class Readiness:
    """The latest readiness checks of this process, answered again for ``fresh_s``: a probe sent
    by anyone, without a key, must not cost a new broker connection each time."""

    def __init__(self, fresh_s: float = 1.0) -> None:
        self.fresh_s = fresh_s
        self._checks: dict[str, str] = {}
        self._at = -math.inf
        self._lock = asyncio.Lock()  # probes arriving together share one check

    async def checks(self, engine: Engine, settings: Settings) -> dict[str, str]:
        async with self._lock:
            if time.monotonic() - self._at >= self.fresh_s:
                self._checks = {
                    "database": await run_in_threadpool(_database_answers, engine),
                    "broker": await run_in_threadpool(_broker_answers, settings),
                }
                self._at = time.monotonic()
            return dict(self._checks)


@router.get("/readyz", summary="The database and the broker answer (checked once a second)", responses={503: {}})
async def readyz(request: Request, engine: EngineDep, settings: SettingsDep) -> JSONResponse:
    readiness: Readiness = request.app.state.readiness
    checks = await readiness.checks(engine, settings)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers=None if ready else {"Retry-After": "5"},
    )


def _database_answers(engine: Engine) -> str:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; say which kind
        logger.warning("readiness: database check failed: %s", type(exc).__name__)
        return f"error: {type(exc).__name__}"
    return "ok"


def _broker_answers(settings: Settings) -> str:
    parameters = pika.URLParameters(broker_url(settings))
    parameters.connection_attempts = 1
    try:
        connection = pika.BlockingConnection(parameters)
    except Exception as exc:  # pika's errors share no useful base for this purpose
        logger.warning("readiness: broker check failed: %s", type(exc).__name__)
        return f"error: {type(exc).__name__}"
    connection.close()
    return "ok"
