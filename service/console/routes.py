"""The console's pages under /ui (not in the OpenAPI document: they answer HTML, not JSON)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from db.models import RequestStatus, Scope
from service.api.problems import status_of, violations_of
from service.console import forms, queries, signin
from service.core.errors import (
    Conflict,
    DependencyUnavailable,
    HostmasterError,
    InvalidRequest,
    Unauthorized,
    Violation,
)
from service.operations import deadletters
from service.registry import records, zones
from service.registry.clients import Principal
from service.requests import provisioning, tracker
from service.requests.groups import Pending
from service.requests.intake import Intake

logger = logging.getLogger(__name__)

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    seconds = max((datetime.now(UTC) - moment).total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


templates.env.filters["when"] = _when
templates.env.filters["ago"] = _ago


class ConsoleRoute(APIRoute):
    """A console page: no session sends the browser to sign in; an error is a page, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handle(request)
            except signin.SignInNeeded:
                return RedirectResponse(f"/ui/signin?{urlencode({'next': _back_to(request)})}", status_code=303)
            except HostmasterError as exc:
                return _error_page(request, exc)
            except RequestValidationError as exc:
                return _error_page(request, InvalidRequest(violations_of(exc)))
            except SQLAlchemyError as exc:
                logger.error("console page %s: database error %s", request.url.path, type(exc).__name__)
                return _error_page(request, DependencyUnavailable("the database cannot be reached", retry_after_s=5))

        return page


def _back_to(request: Request) -> str:
    """The page to come back to after signing in: this one, or for a form, the page that holds it."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return request.url.path.rsplit("/", 1)[0]  # /ui/zones/x/changes → /ui/zones/x, /ui/health/redrive → /ui/health


def _error_page(request: Request, exc: HostmasterError) -> HTMLResponse:
    status = status_of(exc)
    if status >= 500:
        logger.error("console page %s failed: %s", request.url.path, exc.detail)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
    violations = getattr(exc, "violations", [])
    principal = getattr(request.state, "console_principal", None)
    context = {"error": exc, "violations": violations}
    return render(request, "error.html", context, status, headers, principal=principal)


router = APIRouter(prefix="/ui", include_in_schema=False, route_class=ConsoleRoute)
Signed = Annotated[Principal, Depends(signin.principal_of)]


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
    principal: Principal | None = None,
) -> HTMLResponse:
    settings = request.app.state.settings
    full = {
        "principal": principal,
        "form_token": signin.form_token(request) if principal else "",
        "request_id": getattr(request.state, "request_id", ""),
        "rabbitmq_url": settings.console_rabbitmq_url,
        **context,
    }
    return templates.TemplateResponse(request, template, full, status_code=status, headers=headers)


def _session(request: Request) -> Session:
    return Session(request.app.state.engine)


@router.get("")
@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/requests", status_code=303)


@router.get("/signin")
async def signin_page(request: Request, next: Annotated[str, Query(max_length=2048)] = "") -> HTMLResponse:
    return render(request, "signin.html", {"next": signin.safe_next(next)})


@router.post("/signin")
async def signin_submit(request: Request) -> Response:
    signin.check_origin(request)  # no signing a victim's browser in to another key (login CSRF)
    form = await forms.read_form(request)
    target = signin.safe_next(forms.one(form, "next"))
    key = forms.one(form, "key")
    response = RedirectResponse(target, status_code=303)
    try:
        await signin.sign_in(request, response, key)
    except Unauthorized as exc:
        return render(request, "signin.html", {"next": target, "error": exc.detail}, status=401)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    form = await forms.read_form(request)
    signin.check_form(request, forms.one(form, "form_token"))
    response = RedirectResponse("/ui/signin", status_code=303)
    await signin.sign_out(request, response)
    return response


@router.get("/requests")
async def request_list(
    request: Request,
    principal: Signed,
    status: Annotated[str, Query(max_length=16)] = "",
    zone: Annotated[str, Query(max_length=255)] = "",
    client: Annotated[str, Query(max_length=255)] = "",
    source: Annotated[str, Query(max_length=16)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    asked = queries.RequestFilter(status, zone, client, source, since, until)
    problems: list[str] = []
    rows: list[queries.RequestRow] = []

    def read() -> list[queries.RequestRow]:
        with _session(request) as session:
            return queries.list_requests(session, principal, asked)

    try:
        rows = await run_in_threadpool(read)
    except InvalidRequest as exc:
        problems = [f"{violation.field}: {violation.message}" for violation in exc.violations]
    context = {
        "asked": asked,
        "rows": rows,
        "problems": problems,
        "statuses": queries.STATUSES,
        "sources": queries.SOURCES,
        "page_size": queries.PAGE,
        "older": queries.older(asked, rows),
    }
    return render(request, "requests.html", context, 422 if problems else 200, principal=principal)


@router.get("/requests/{request_id}")
async def request_page(request: Request, request_id: str, principal: Signed) -> HTMLResponse:
    def read() -> Any:
        with _session(request) as session:
            return tracker.describe_request(session, principal, request_id=request_id)

    found = await run_in_threadpool(read)
    logs_url = request.app.state.settings.console_logs_url
    context = {
        "found": found,
        "timeline": queries.timeline(found),
        "violations": queries.violations(found),
        "terminal": RequestStatus(found.status).terminal,
        "logs_url": logs_url.replace("{request_id}", quote(str(found.request_id))) if logs_url else "",
        "api_url": str(request.url_for("get_request", request_id=str(found.request_id))),
    }
    return render(request, "request.html", context, principal=principal)


@router.get("/zones")
async def zone_list(request: Request, principal: Signed) -> HTMLResponse:
    def read() -> list[Any]:
        with _session(request) as session:
            return [zones.public(session, zone) for zone in queries.readable_zones(session, principal)]

    return render(request, "zones.html", {"zones": await run_in_threadpool(read)}, principal=principal)


async def _zone_page(
    request: Request, principal: Principal, zone: str, cursor: str | None, extra: dict[str, Any], status: int = 200
) -> HTMLResponse:
    def read() -> tuple[Any, Any]:
        with _session(request) as session:
            principal.require(Scope.read, [queries.zone_name(zone)])  # before saying whether it exists
            found = zones.get_zone(session, zone)
            page = records.list_records(session, principal, zone=found.name, cursor=cursor, limit=queries.PAGE)
            return zones.public(session, found), page

    found, page = await run_in_threadpool(read)
    rows = extra.pop("rows", None) or [forms.Row() for _ in range(forms.EMPTY_ROWS)]
    context = {
        "zone": found,
        "page": page,
        "cursor": cursor,
        "rows": rows,
        "operations": forms.OPERATIONS,
        "writable": principal.may(Scope.write),
        **extra,
    }
    return render(request, "zone.html", context, status, principal=principal)


@router.get("/zones/{zone}")
async def zone_page(
    request: Request, zone: str, principal: Signed, cursor: Annotated[str | None, Query(max_length=600)] = None
) -> HTMLResponse:
    return await _zone_page(request, principal, zone, cursor, {})


@router.post("/zones/{zone}/changes")
async def zone_changes(request: Request, zone: str, principal: Signed) -> Response:
    form = await forms.read_form(request)
    signin.check_form(request, forms.one(form, "form_token"))
    rows = forms.rows_of(form)
    dry_run = forms.one(form, "intent") != "apply"
    force = forms.one(form, "force") == "yes"
    # The rows as typed, blanks kept in place, so that "row 4" in a message is the fourth row on the page.
    shown_rows = rows + ([] if any(row.blank for row in rows) else [forms.Row()])

    async def refused(problems: list[str], status: int, *, tracked: bool) -> HTMLResponse:
        """The form again with its rows and why; a refused change set (not a dry run) links its request."""
        extra: dict[str, Any] = {"rows": shown_rows, "problems": problems, "force": force}
        if tracked and not dry_run:
            extra["rejected_request"] = str(request.state.request_id)
        return await _zone_page(request, principal, zone, None, extra, status)

    try:
        body, numbers = forms.change_set(rows, dry_run=dry_run, force=force)
    except forms.BadRows as exc:
        return await refused(exc.lines, 422, tracked=False)  # refused here: nothing was sent or recorded
    intake: Intake = request.app.state.intake  # as the API's change sets are: the same limits and key window
    try:
        outcome = await intake.accept(
            Pending(
                request_id=request.state.request_id,
                operation="changeset",
                parser=provisioning.change_set(zone),
                body=body,
                principal=principal,
                target={"zone": zone},
            )
        )
    except InvalidRequest as exc:
        return await refused(forms.explain(exc.violations, numbers), 422, tracked=True)
    except Conflict as exc:  # e.g. the mass-change guard: the form says how to pass it
        return await refused([exc.detail], 409, tracked=True)
    if outcome.request is None:
        extra = {"rows": shown_rows, "plan": outcome.changes, "force": force}
        return await _zone_page(request, principal, zone, None, extra)
    return RedirectResponse(f"/ui/requests/{outcome.request.id}", status_code=303)


@router.get("/health")
async def health_page(
    request: Request, principal: Signed, redriven: Annotated[int | None, Query(ge=0)] = None
) -> HTMLResponse:
    settings = request.app.state.settings

    def read() -> dict[str, Any]:
        with _session(request) as session:
            hours = queries.counts_by_hour(session, principal)
            return {
                "hours": hours,
                "chart": queries.chart(hours),
                "open": queries.open_requests(session, principal),
                "reports": queries.latest_reports(session, principal),
            }

    context = await run_in_threadpool(read)
    context.update(statuses=queries.STATUSES, redriven=redriven, dead=None, dead_error=None)
    if principal.admin and not request.headers.get("x-console-refresh"):  # a refresh redraws the counts only
        try:
            context["dead"] = await run_in_threadpool(deadletters.list_dead, request.app.state.engine, settings)
        except DependencyUnavailable as exc:
            context["dead_error"] = exc.detail
    return render(request, "health.html", context, principal=principal)


@router.post("/health/redrive")
async def redrive(request: Request, principal: Signed) -> RedirectResponse:
    form = await forms.read_form(request)
    signin.check_form(request, forms.one(form, "form_token"))
    principal.require(Scope.admin)
    message_id = forms.one(form, "message_id").strip() or None
    if message_id is None and forms.one(form, "all") != "yes":
        raise InvalidRequest([Violation("message_id", "name a message to re-drive, or re-drive all")])
    settings = request.app.state.settings
    redriven = await run_in_threadpool(
        lambda: deadletters.redrive(
            request.app.state.engine, settings, request.app.state.dispatcher, message_id=message_id
        )
    )
    return RedirectResponse(f"/ui/health?redriven={len(redriven)}", status_code=303)
