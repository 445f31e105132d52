"""Routes of API v1. Each parses, calls one function of the business logic, returns."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from db.schemas import (
    RecordCreate,
    RecordList,
    RequestAccepted,
    RequestEventPublic,
    RequestPublic,
    ZoneCreate,
    ZonePublic,
)
from service import provisioning, records, tracker, zones
from service.api.deps import DispatcherDep, EngineDep, SessionDep
from service.errors import InvalidRequest, NotFound, Violation

router = APIRouter(prefix="/api/v1")

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
RECORD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": RecordCreate.model_json_schema()}},
    }
}


@router.post(
    "/records",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RequestAccepted,
    openapi_extra=RECORD_BODY,
    responses={409: PROBLEM, 422: PROBLEM, 503: PROBLEM},
    summary="Ask for one RRset; the answer is the request id to follow",
)
async def create_record(
    request: Request, response: Response, engine: EngineDep, dispatcher: DispatcherDep
) -> RequestAccepted:
    payload = _json_body(await request.body())
    tracked = await run_in_threadpool(
        provisioning.submit_record,
        engine=engine,
        dispatcher=dispatcher,
        request_id=request.state.request_id,
        payload=payload,
    )
    status_url = str(request.url_for("get_request", request_id=str(tracked.id)))
    response.headers["Location"] = status_url
    return RequestAccepted(request_id=tracked.id, status=tracked.status, status_url=status_url)


@router.get("/records", response_model=RecordList, summary="Desired RRsets with their status")
def list_records(
    session: SessionDep,
    zone: str | None = Query(default=None, max_length=255, description="Only RRsets of this zone."),
) -> RecordList:
    return RecordList(items=records.list_records(session, zone=zone))


@router.get(
    "/requests/{request_id}",
    response_model=RequestPublic,
    responses={404: PROBLEM},
    summary="A request's status and its steps in order",
)
def get_request(request_id: str, session: SessionDep) -> RequestPublic:
    try:
        parsed = uuid.UUID(request_id)
    except ValueError:
        raise NotFound(f"no request has the id {request_id!r}", code="request_not_found") from None
    found = tracker.get_request(session, parsed)
    events = tracker.events_of(session, parsed)
    return RequestPublic(
        request_id=found.id,
        source=found.source,
        client=found.client,
        operation=found.operation,
        payload=found.payload,
        status=found.status,
        attempts=found.attempts,
        error_code=found.error_code,
        error_detail=found.error_detail,
        created_at=found.created_at,
        updated_at=found.updated_at,
        events=[RequestEventPublic.model_validate(event, from_attributes=True) for event in events],
    )


@router.post(
    "/zones",
    status_code=status.HTTP_201_CREATED,
    response_model=ZonePublic,
    responses={409: PROBLEM, 422: PROBLEM},
    summary="Register a zone Hostmaster may change (admin)",
)
def create_zone(zone_in: ZoneCreate, session: SessionDep) -> ZonePublic:
    return ZonePublic.model_validate(zones.register_zone(session, zone_in), from_attributes=True)


@router.get("/zones", response_model=list[ZonePublic], summary="Registered zones")
def list_zones(session: SessionDep) -> list[ZonePublic]:
    return [ZonePublic.model_validate(zone, from_attributes=True) for zone in zones.list_zones(session)]


def _json_body(body: bytes) -> Any:
    if not body:
        raise InvalidRequest([Violation("body", "is empty; send a JSON object")])
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest([Violation("body", f"is not valid JSON: {exc}")]) from None
