"""API clients (admin): create, list, read (with the use of their quotas), set quotas, rotate, revoke.

A key is shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from db.models import ApiClient, Scope
from db.schemas import ClientCreate, ClientDetail, ClientPublic, ClientQuota, ClientUpdate, ClientWithKey, QuotaUse
from service.api.auth import ClientDep
from service.api.common import json_body, problems, read_model
from service.api.deps import SessionDep, SettingsDep
from service.core.settings import Settings
from service.registry import clients, quotas

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
                session,
                name=body.name,
                scopes=body.scopes,
                zones=body.zones,
                pepper=settings.pepper,
                max_rrsets=body.max_rrsets,
                max_changes_per_day=body.max_changes_per_day,
            )

    created, key = await run_in_threadpool(create)
    return ClientWithKey.model_validate(
        {**ClientPublic.model_validate(created, from_attributes=True).model_dump(), "key": key}
    )


@router.get("", response_model=list[ClientPublic], summary="Every client (never a key)")
def list_clients(session: SessionDep, client: ClientDep) -> list[ClientPublic]:
    client.require(Scope.admin)
    return [ClientPublic.model_validate(found, from_attributes=True) for found in clients.list_clients(session)]


@router.get(
    "/{name}",
    response_model=ClientDetail,
    responses=problems(404, 422),
    summary="One client, with what it uses of its quotas",
)
def get_client(name: ClientName, session: SessionDep, settings: SettingsDep, client: ClientDep) -> ClientDetail:
    client.require(Scope.admin)
    return _detail(session, clients.get_client(session, name), settings)


@router.patch(
    "/{name}",
    response_model=ClientDetail,
    responses=problems(404, 413, 422),
    openapi_extra=json_body(ClientUpdate),
    summary="Set a client's quotas (null: the service's default)",
)
async def update_client(name: ClientName, request: Request, settings: SettingsDep, client: ClientDep) -> ClientDetail:
    client.require(Scope.admin)
    body = await read_model(request, ClientUpdate, settings)
    changed = {field: getattr(body, field) for field in body.model_fields_set}

    def update() -> ClientDetail:
        with Session(request.app.state.engine) as session:
            return _detail(session, clients.set_quotas(session, name=name, quotas=changed), settings)

    return await run_in_threadpool(update)


def _detail(session: Session, found: ApiClient, settings: Settings) -> ClientDetail:
    principal = clients.principal_of(found, quotas.defaults(settings))
    use = quotas.usage_of(session, found)
    quota = ClientQuota(
        rrsets=QuotaUse(limit=principal.quota.rrsets, used=use.rrsets),
        changes_per_day=QuotaUse(limit=principal.quota.changes_per_day, used=use.changes_today),
        resets_at=use.resets_at,
    )
    public = ClientPublic.model_validate(found, from_attributes=True).model_dump()
    return ClientDetail.model_validate({**public, "quota": quota})


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
