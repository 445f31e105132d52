"""The dead-letter queue (admin): list with reasons, re-drive, purge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from db.models import Scope
from db.schemas import DeadLetterPublic, Redrive, Redriven
from service.api.auth import ClientDep
from service.api.common import json_body, problems, read_model
from service.api.deps import SettingsDep
from service.core.errors import InvalidRequest, Violation
from service.operations import deadletters

router = APIRouter(prefix="/api/v1/dlq", tags=["dead letters (admin)"], responses=problems(401, 403, 429, 503))


@router.get("", response_model=list[DeadLetterPublic], summary="Messages that ran out of retries, and why")
async def list_dead(request: Request, settings: SettingsDep, client: ClientDep) -> list[DeadLetterPublic]:
    client.require(Scope.admin)
    found = await run_in_threadpool(deadletters.list_dead, request.app.state.engine, settings)
    return [DeadLetterPublic.model_validate(item, from_attributes=True) for item in found]


@router.post(
    "/redrive",
    response_model=Redriven,
    responses=problems(413, 422),
    openapi_extra=json_body(Redrive),
    summary="Re-drive one message or all, with a full retry budget",
)
async def redrive(request: Request, settings: SettingsDep, client: ClientDep) -> Redriven:
    client.require(Scope.admin)
    body = await read_model(request, Redrive, settings)
    if (body.message_id is None) == (not body.all):
        raise InvalidRequest([Violation("message_id", "give a message_id, or all: true")])
    redriven = await run_in_threadpool(
        lambda: deadletters.redrive(
            request.app.state.engine, settings, request.app.state.dispatcher, message_id=body.message_id
        )
    )
    return Redriven(request_ids=redriven)


@router.delete("", responses=problems(422), summary="Purge the dead-letter queue (confirm=yes)")
async def purge(
    settings: SettingsDep, client: ClientDep, confirm: Annotated[str, Query(description="`yes`")] = ""
) -> dict[str, int]:
    client.require(Scope.admin)
    if confirm != "yes":
        raise InvalidRequest([Violation("confirm", "purging drops every dead letter: send confirm=yes")])
    return {"purged": await run_in_threadpool(deadletters.purge, settings)}
