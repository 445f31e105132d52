"""What the console's pages show, read from the tracker and the desired state for one client.

Every query here is limited to what the signed-in key may see: a client that is not an admin
sees its own requests, and zones, RRsets and reports of the zones granted to it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from db.models import Reconciliation, Request, RequestChange, RequestStatus, Scope, Source, Step, Zone
from db.schemas import RequestEventPublic, RequestPublic
from service.core.errors import InvalidRequest, NotFound, Violation
from service.dns.names import BadName, normalize_name, shown
from service.registry import zones
from service.registry.clients import Principal

PAGE = 100
HOURS = 24
STATUSES = [status.value for status in RequestStatus]
SOURCES = [source.value for source in Source]
# Steps that end a request or say something went wrong, drawn in the colour of a failure.
TROUBLE = {Step.rejected, Step.enqueue_failed, Step.retry_scheduled, Step.dead_lettered, Step.failed}


@dataclass(frozen=True)
class RequestFilter:
    """The request list's filters, as the form sends them (empty: any)."""

    status: str = ""
    zone: str = ""
    client: str = ""
    source: str = ""
    since: str = ""
    until: str = ""

    def query(self) -> dict[str, str]:
        return {key: value for key, value in self.__dict__.items() if value}


@dataclass
class RequestRow:
    id: str
    status: str
    operation: str
    source: str
    client: str | None
    zone: str | None
    created_at: datetime
    error: str | None


def list_requests(session: Session, principal: Principal, asked: RequestFilter) -> list[RequestRow]:
    """The latest requests that match ``asked``, newest first; InvalidRequest names a bad filter."""
    principal.require(Scope.read)
    statement = (
        select(Request, Zone.name)
        .join(Zone, col(Zone.id) == col(Request.zone_id), isouter=True)
        .order_by(col(Request.created_at).desc())
        .limit(PAGE)
    )
    violations = []
    if asked.status:
        if asked.status not in STATUSES:
            violations.append(Violation("status", f"{shown(asked.status)} is not a status; use one of {STATUSES}"))
        statement = statement.where(Request.status == asked.status)
    if asked.source:
        if asked.source not in SOURCES:
            violations.append(Violation("source", f"{shown(asked.source)} is not a source; use one of {SOURCES}"))
        statement = statement.where(Request.source == asked.source)
    if asked.zone:
        try:
            statement = statement.where(_about_zone(normalize_name(asked.zone)))
        except BadName as exc:
            violations.append(Violation("zone", str(exc)))
    if not principal.admin:
        statement = statement.where(Request.client == principal.name)
    if asked.client:
        statement = statement.where(Request.client == asked.client.strip())
    since = _moment("since", asked.since, violations) if asked.since else None
    until = _moment("until", asked.until, violations) if asked.until else None
    if since is not None:
        statement = statement.where(col(Request.created_at) >= since)
    if until is not None:
        statement = statement.where(col(Request.created_at) < until)
    if violations:
        raise InvalidRequest(violations)
    return [
        RequestRow(
            id=str(request.id),
            status=request.status,
            operation=request.operation,
            source=request.source,
            client=request.client,
            zone=zone,
            created_at=request.created_at,
            error=f"{request.error_code}: {request.error_detail}" if request.error_code else None,
        )
        for request, zone in session.exec(statement).all()
    ]


def _about_zone(zone: str) -> sa.ColumnElement[bool]:
    """A request about ``zone`` (absolute): planned in it alone, changing an RRset in it (a change set
    whose automatic PTRs reach a reverse zone too), or refused before planning with it as its target."""
    in_changes = (
        select(RequestChange.request_id)
        .where(col(RequestChange.request_id) == col(Request.id), RequestChange.zone == zone)
        .exists()
    )
    targets = [zone, zone.rstrip(".")]
    target = Request.__table__.c.payload["target"]["zone"].astext  # type: ignore[attr-defined]
    return sa.or_(
        col(Zone.name) == zone, in_changes, sa.and_(col(Request.zone_id).is_(None), sa.func.lower(target).in_(targets))
    )


def older(asked: RequestFilter, rows: list[RequestRow]) -> dict[str, str] | None:
    """The filters of the next page back (the same, until the oldest request shown); None on a short page."""
    if len(rows) < PAGE:
        return None
    until = rows[-1].created_at.astimezone(UTC).replace(tzinfo=None).isoformat()
    return {**asked.query(), "until": until}


def _moment(name: str, text: str, violations: list[Violation]) -> datetime | None:
    """A time of the form, read as UTC when it names no zone (what <input type=datetime-local> sends)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        violations.append(Violation(name, f"{shown(text)} is not a time; use 2026-11-26T14:30 (UTC)"))
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Mark:
    """One step of a request on its timeline: where it falls, how long since the step before."""

    event: RequestEventPublic
    offset_s: float
    took_s: float
    x: float  # 0 to 1000 across the timeline
    start_x: float
    trouble: bool


@dataclass
class Timeline:
    marks: list[Mark]
    total_s: float
    ticks: list[tuple[float, str]] = field(default_factory=list)  # (x, label)


def timeline(request: RequestPublic) -> Timeline:
    """The request's steps drawn to scale: 0 is the moment it came, 1000 its latest step."""
    offsets = [max((event.at - request.created_at).total_seconds(), 0.0) for event in request.events]
    total = max(offsets, default=0.0) or 1e-3
    marks = []
    previous = 0.0
    for event, offset in zip(request.events, offsets, strict=True):
        marks.append(
            Mark(
                event=event,
                offset_s=offset,
                took_s=offset - previous,
                x=1000 * offset / total,
                start_x=1000 * previous / total,
                trouble=event.step in TROUBLE,
            )
        )
        previous = offset
    return Timeline(marks=marks, total_s=total, ticks=_ticks(total))


def violations(request: RequestPublic) -> list[dict[str, str]]:
    """Every bad field of a refused request, as its ``rejected`` step recorded them."""
    for event in reversed(request.events):
        if event.step == Step.rejected:
            found = event.detail.get("violations") or []
            return [item for item in found if isinstance(item, dict)]
    return []


def _ticks(total: float) -> list[tuple[float, str]]:
    """Round marks along the axis, at most six: a step of 1, 2 or 5 times a power of ten seconds."""
    rough = total / 5
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= rough)
    return [(1000 * at / total, _duration(at, step)) for at in (i * step for i in range(int(total / step + 1e-9) + 1))]


def _duration(seconds: float, step: float) -> str:
    if step < 1:
        return f"{seconds * 1000:.3g} ms"
    if step < 120:
        return f"{seconds:.3g} s"
    if step < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


@dataclass
class Hour:
    start: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def counts_by_hour(session: Session, principal: Principal, now: datetime | None = None) -> list[Hour]:
    """Requests that came in each of the last 24 hours, by their status now."""
    principal.require(Scope.read)
    now = now or datetime.now(UTC)
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    hour = sa.func.date_trunc("hour", col(Request.created_at))
    statement = (
        select(hour, Request.status, sa.func.count())
        .where(col(Request.created_at) >= first)
        .group_by(hour, Request.status)
    )
    if not principal.admin:
        statement = statement.where(Request.client == principal.name)
    found: dict[datetime, dict[str, int]] = defaultdict(dict)
    for start, status, count in session.exec(statement).all():
        found[start.astimezone(UTC)][status] = count
    return [Hour(first + timedelta(hours=i), found.get(first + timedelta(hours=i), {})) for i in range(HOURS)]


def open_requests(session: Session, principal: Principal) -> dict[str, tuple[int, datetime | None]]:
    """Requests not yet ended, by status: how many, and since when the oldest waits."""
    statement = (
        select(Request.status, sa.func.count(), sa.func.min(Request.updated_at))
        .where(col(Request.status).in_([s.value for s in RequestStatus if not s.terminal]))
        .group_by(Request.status)
    )
    if not principal.admin:
        statement = statement.where(Request.client == principal.name)
    return {status: (count, oldest) for status, count, oldest in session.exec(statement).all()}


def latest_reports(session: Session, principal: Principal) -> list[Reconciliation]:
    """The latest reconciliation of each registered zone the key may read, zones with drift first."""
    statement = (
        select(Reconciliation)
        .join(Zone, col(Zone.id) == col(Reconciliation.zone_id))
        .distinct(col(Reconciliation.zone_id))
        .order_by(col(Reconciliation.zone_id), col(Reconciliation.requested_at).desc(), col(Reconciliation.id).desc())
    )
    reports = [report for report in session.exec(statement).all() if principal.grants(report.zone)]
    return sorted(reports, key=lambda report: (-report.drifted, report.zone))


def zone_name(text: str) -> str:
    """The zone a page's path names, absolute; NotFound for what cannot be a name."""
    try:
        return normalize_name(text)
    except BadName:
        raise NotFound(f"no zone is named {shown(text)}", code="zone_not_found") from None


def readable_zones(session: Session, principal: Principal) -> list[Zone]:
    principal.require(Scope.read)
    return [zone for zone in zones.list_zones(session) if principal.grants(zone.name)]


def chart(hours: list[Hour]) -> dict[str, Any]:
    """Stacked bars of ``hours``: for each hour, (status, y, height) in a 0 to 100 box."""
    top = max((hour.total for hour in hours), default=0) or 1
    bars = []
    for hour in hours:
        y = 100.0
        stack = []
        for status in STATUSES:
            count = hour.counts.get(status, 0)
            if count:
                height = 100 * count / top
                y -= height
                stack.append((status, y, height, count))
        bars.append((hour, stack))
    return {"bars": bars, "top": top}
