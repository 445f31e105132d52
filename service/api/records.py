"""API v1: one RRset per call, and the requests that follow from it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from db.models import RRsetStatus
from db.schemas import RecordCreate, RecordPage, RecordPublic, RecordReplace, RequestAccepted, RequestPublic
from service.api.auth import ClientDep
from service.api.common import accepted_response, json_body, problems, submit
from service.api.deps import SessionDep, SettingsDep
from service.registry import records
from service.requests import provisioning, tracker

router = APIRouter(prefix="/api/v1", tags=["records (v1)"], responses=problems(401, 403, 429, 503))

NamePath = Annotated[str, Path(description="Owner name, absolute (trailing dot optional).", max_length=255)]
TypePath = Annotated[str, Path(description="Record type, e.g. A.", max_length=10)]


@router.post(
    "/records",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RequestAccepted,
    openapi_extra=json_body(RecordCreate),
    responses=problems(409, 413, 422, 503),
    summary="Create one RRset; 409 when it exists",
)
async def create_record(request: Request, response: Response, settings: SettingsDep, client: ClientDep) -> Response:
    outcome = await submit(
        request,
        response,
        settings=settings,
        parser=provisioning.record_create,
        operation="record.create",
        principal=client,
    )
    return accepted_response(request, response, outcome)


@router.get(
    "/records",
    response_model=RecordPage,
    responses=problems(422),
    summary="Desired RRsets with their status, a page at a time",
)
def list_records(
    session: SessionDep,
    client: ClientDep,
    zone: Annotated[str | None, Query(max_length=255, description="Only RRsets of this zone.")] = None,
    name: Annotated[str | None, Query(max_length=255, description="Only this owner name.")] = None,
    type: Annotated[str | None, Query(max_length=10, description="Only this type.")] = None,
    status: Annotated[RRsetStatus | None, Query(description="Only RRsets in this status.")] = None,
    cursor: Annotated[str | None, Query(max_length=600, description="`next_cursor` of the page before.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RecordPage:
    return records.list_records(
        session, client, zone=zone, name=name, rtype=type, status=status, cursor=cursor, limit=limit
    )


@router.get("/records/{name}/{type}", response_model=RecordPublic, responses=problems(404, 422), summary="One RRset")
def get_record(name: NamePath, type: TypePath, session: SessionDep, client: ClientDep) -> RecordPublic:
    return records.get_record(session, client, name=name, rtype=type)


@router.put(
    "/records/{name}/{type}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RequestAccepted,
    openapi_extra=json_body(RecordReplace),
    responses=problems(409, 413, 422, 503),
    summary="Replace one RRset (created when absent)",
)
async def replace_record(
    name: NamePath,
    type: TypePath,
    request: Request,
    response: Response,
    settings: SettingsDep,
    client: ClientDep,
) -> Response:
    outcome = await submit(
        request,
        response,
        settings=settings,
        parser=provisioning.record_replace(name, type),
        operation="record.replace",
        target={"name": name, "type": type},
        principal=client,
    )
    return accepted_response(request, response, outcome)


@router.delete(
    "/records/{name}/{type}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RequestAccepted,
    responses=problems(404, 409, 422, 503),
    summary="Delete one RRset",
)
async def delete_record(
    name: NamePath,
    type: TypePath,
    request: Request,
    response: Response,
    settings: SettingsDep,
    client: ClientDep,
) -> Response:
    outcome = await submit(
        request,
        response,
        settings=settings,
        parser=provisioning.record_delete(name, type),
        operation="record.delete",
        target={"name": name, "type": type},
        with_body=False,
        principal=client,
    )
    return accepted_response(request, response, outcome)


@router.get(
    "/requests/{request_id}",
    response_model=RequestPublic,
    responses=problems(404, 422),
    summary="A request's status, its changes and its steps in order",
    tags=["requests"],
)
def get_request(request_id: str, session: SessionDep, client: ClientDep) -> RequestPublic:
    return tracker.describe_request(session, client, request_id=request_id)
