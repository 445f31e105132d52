"""Routes of API v1. Each parses, calls one function of the business logic, returns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from db.schemas import (
    RecordCreate,
    RecordList,
    RequestAccepted,
    RequestPublic,
    ZoneCreate,
    ZonePublic,
)
from service import provisioning, records, tracker, zones
from service.api.deps import DispatcherDep, EngineDep, SessionDep, SettingsDep
from service.errors import PayloadTooLarge

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
    request: Request, response: Response, engine: EngineDep, dispatcher: DispatcherDep, settings: SettingsDep
) -> RequestAccepted:
    body = await _read_body(request, settings.max_body_bytes)
    tracked = await run_in_threadpool(
        lambda: provisioning.submit_record(
            engine=engine, dispatcher=dispatcher, request_id=request.state.request_id, body=body
        )
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
    return tracker.describe_request(session, request_id=request_id)


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


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to pass ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body passes the limit of {limit} bytes")
    return bytes(body)
