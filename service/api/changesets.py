"""API v2: change sets, validated together and applied all or nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from db.schemas import ChangeSetIn, Plan, RequestAccepted
from service.api.auth import ClientDep
from service.api.common import accepted_response, json_body, problems, submit
from service.api.deps import SettingsDep
from service.requests import provisioning

router = APIRouter(prefix="/api/v2", tags=["change sets (v2)"], responses=problems(401, 403, 429, 503))


@router.post(
    "/zones/{zone}/changes",
    status_code=202,
    response_model=RequestAccepted,
    openapi_extra=json_body(ChangeSetIn),
    responses={
        200: {"model": Plan, "description": "The plan of a dry run; nothing changed."},
        **problems(404, 409, 413, 422, 503),
    },
    summary="Apply a change set to a zone, or plan it (dry_run)",
)
async def post_changes(
    zone: Annotated[str, Path(max_length=255, description="The zone every change belongs to.")],
    request: Request,
    response: Response,
    settings: SettingsDep,
    client: ClientDep,
) -> Response:
    outcome = await submit(
        request,
        response,
        settings=settings,
        parser=provisioning.change_set(zone),
        operation="changeset",
        target={"zone": zone},
        principal=client,
    )
    if outcome.request is None:
        plan = Plan(dry_run=True, changes=outcome.changes)
        return JSONResponse(plan.model_dump(mode="json"), status_code=200)
    return accepted_response(request, response, outcome)
