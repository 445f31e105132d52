"""Reconciliation: ask for one now (admin), read a zone's reports (read scope and a zone grant)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from db.models import ReconcileStatus, Scope
from db.schemas import ReconcileAccepted, ReconcileIn, ReconciliationPublic
from service.api.auth import ClientDep
from service.api.common import json_body, problems, read_body
from service.api.deps import SessionDep, SettingsDep
from service.core.errors import InvalidRequest
from service.dns.validation import violations_from_pydantic
from service.operations import reconciliation
from service.requests.payloads import parse_json_body

router = APIRouter(
    prefix="/api/v1/zones/{zone}", tags=["reconciliation"], responses=problems(401, 403, 404, 422, 429, 503)
)

ZonePath = Annotated[str, Path(max_length=255, description="Zone name, e.g. example.test")]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="Differences on this page.")]
CursorQuery = Annotated[str | None, Query(max_length=20, description="`next_cursor` of the page before.")]


def _optional(body: dict[str, Any]) -> dict[str, Any]:
    body["requestBody"]["required"] = False
    return body


@router.post(
    "/reconcile",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReconcileAccepted,
    responses=problems(413),
    openapi_extra=_optional(json_body(ReconcileIn)),
    summary="Reconcile the zone now: compare what its primary serves with the desired state (admin)",
)
async def reconcile_zone(
    zone: ZonePath, request: Request, response: Response, settings: SettingsDep, client: ClientDep
) -> ReconcileAccepted:
    client.require(Scope.admin)
    body = await read_body(request, settings.max_body_bytes)
    try:
        options = ReconcileIn.model_validate(parse_json_body(body)) if body.strip() else ReconcileIn()
    except ValidationError as exc:
        raise InvalidRequest(violations_from_pydantic(exc)) from None
    report = await run_in_threadpool(
        lambda: reconciliation.ask(
            request.app.state.engine, request.app.state.dispatcher, client, zone=zone, repair=options.repair
        )
    )
    assert report.id is not None
    url = str(request.url_for("get_reconciliation", zone=report.zone.rstrip("."), report_id=str(report.id)))
    response.headers["Location"] = url
    return ReconcileAccepted(
        report_id=report.id, status=ReconcileStatus(report.status), repair=report.repair, status_url=url
    )


@router.get(
    "/reconciliation",
    response_model=ReconciliationPublic,
    summary="The zone's latest reconciliation: what differs from the desired state, what was repaired",
)
def latest_reconciliation(
    zone: ZonePath, session: SessionDep, client: ClientDep, limit: LimitQuery = 1000, cursor: CursorQuery = None
) -> ReconciliationPublic:
    return reconciliation.latest(session, client, zone=zone, limit=limit, cursor=cursor)


@router.get("/reconciliation/{report_id}", response_model=ReconciliationPublic, summary="One reconciliation")
def get_reconciliation(
    zone: ZonePath,
    report_id: int,
    session: SessionDep,
    client: ClientDep,
    limit: LimitQuery = 1000,
    cursor: CursorQuery = None,
) -> ReconciliationPublic:
    return reconciliation.get_report(session, client, zone=zone, report_id=report_id, limit=limit, cursor=cursor)
