"""Liveness and readiness probes."""

from __future__ import annotations

import logging

import pika
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from service.api.deps import EngineDep, SettingsDep
from service.dispatch import broker_url
from service.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter()


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and the broker answer", responses={503: {}})
async def readyz(engine: EngineDep, settings: SettingsDep) -> JSONResponse:
    checks = {
        "database": await run_in_threadpool(_database_answers, engine),
        "broker": await run_in_threadpool(_broker_answers, settings),
    }
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
