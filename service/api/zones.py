"""The zone registry (admin): the zones Hostmaster may change, their primaries and policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from db.models import Scope
from db.schemas import ZoneCreate, ZonePublic, ZoneUpdate
from service.api.auth import ClientDep
from service.api.common import json_body, problems, read_model
from service.api.deps import SessionDep, SettingsDep
from service.registry import zones

router = APIRouter(prefix="/api/v1/zones", tags=["zones (admin)"], responses=problems(401, 403, 429, 503))

T = TypeVar("T")
ZonePath = Annotated[str, Path(max_length=255, description="Zone name, e.g. example.test")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ZonePublic,
    responses=problems(409, 413, 422),
    openapi_extra=json_body(ZoneCreate),
    summary="Register a zone",
)
async def create_zone(request: Request, settings: SettingsDep, client: ClientDep) -> ZonePublic:
    client.require(Scope.admin)
    zone_in = await read_model(request, ZoneCreate, settings)
    return await run_in_threadpool(
        _in_session, request, lambda session: zones.public(session, zones.register_zone(session, zone_in))
    )


@router.get("", response_model=list[ZonePublic], summary="Registered zones")
def list_zones(session: SessionDep, client: ClientDep) -> list[ZonePublic]:
    client.require(Scope.read)
    return [zones.public(session, zone) for zone in zones.list_zones(session) if client.grants(zone.name)]


@router.get("/{zone}", response_model=ZonePublic, responses=problems(404, 422), summary="One zone")
def get_zone(zone: ZonePath, session: SessionDep, client: ClientDep) -> ZonePublic:
    found = zones.get_zone(session, zone)
    client.require(Scope.read, [found.name])
    return zones.public(session, found)


@router.patch(
    "/{zone}",
    response_model=ZonePublic,
    responses=problems(404, 413, 422),
    openapi_extra=json_body(ZoneUpdate),
    summary="Change a zone's primary, key or policy",
)
async def update_zone(zone: ZonePath, request: Request, settings: SettingsDep, client: ClientDep) -> ZonePublic:
    client.require(Scope.admin)
    changes = await read_model(request, ZoneUpdate, settings)
    return await run_in_threadpool(
        _in_session, request, lambda session: zones.public(session, zones.update_zone(session, zone, changes))
    )


def _in_session(request: Request, work: Callable[[Session], T]) -> T:
    with Session(request.app.state.engine) as session:
        return work(session)


@router.delete(
    "/{zone}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404, 409, 422),
    summary="Unregister a zone that holds no records",
)
def delete_zone(zone: ZonePath, session: SessionDep, client: ClientDep) -> Response:
    client.require(Scope.admin)
    zones.delete_zone(session, zone)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
