"""API clients (admin): create, list, rotate and revoke; a key is shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from db.models import ApiClient, Scope
from db.schemas import ClientCreate, ClientPublic, ClientWithKey
from service import clients
from service.api.auth import ClientDep
from service.api.common import json_body, problems, read_model
from service.api.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1/clients", tags=["clients (admin)"], responses=problems(401, 403, 429, 503))

ClientName = Annotated[str, Path(max_length=64, description="The client's name.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ClientWithKey,
    responses=problems(409, 413, 422),
    openapi_extra=json_body(ClientCreate),
    summary="Create a client; its key is in this answer and nowhere else",
)
async def create_client(request: Request, settings: SettingsDep, client: ClientDep) -> ClientWithKey:
    client.require(Scope.admin)
    body = await read_model(request, ClientCreate, settings)

    def create() -> tuple[ApiClient, str]:
        with Session(request.app.state.engine) as session:
            return clients.create_client(
                session, name=body.name, scopes=body.scopes, zones=body.zones, pepper=settings.pepper
            )

    created, key = await run_in_threadpool(create)
    return ClientWithKey.model_validate(
        {**ClientPublic.model_validate(created, from_attributes=True).model_dump(), "key": key}
    )


@router.get("", response_model=list[ClientPublic], summary="Every client (never a key)")
def list_clients(session: SessionDep, client: ClientDep) -> list[ClientPublic]:
    client.require(Scope.admin)
    return [ClientPublic.model_validate(found, from_attributes=True) for found in clients.list_clients(session)]


@router.post(
    "/{name}/rotate",
    response_model=ClientWithKey,
    responses=problems(404, 422),
    summary="A new key for the client; the old one stops working",
)
def rotate_key(name: ClientName, session: SessionDep, settings: SettingsDep, client: ClientDep) -> ClientWithKey:
    client.require(Scope.admin)
    rotated, key = clients.rotate_key(session, name=name, pepper=settings.pepper)
    return ClientWithKey.model_validate(
        {**ClientPublic.model_validate(rotated, from_attributes=True).model_dump(), "key": key}
    )


@router.delete("/{name}", response_model=ClientPublic, responses=problems(404, 422), summary="Revoke a client's key")
def revoke(name: ClientName, session: SessionDep, client: ClientDep) -> ClientPublic:
    client.require(Scope.admin)
    return ClientPublic.model_validate(clients.revoke(session, name=name), from_attributes=True)
