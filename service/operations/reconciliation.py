"""Reconciliation reports: asking for one, reading them, and the schedule that asks for them.

A report is created ``queued`` by whoever asks (an admin through the API or the CLI, or the
schedule that ``hostmaster run recovery`` keeps); one Dramatiq message with its id then goes to
the workers (workers/reconcile.py), which transfer the zone, compare, repair if the report says
so, and fill the report in. Whether a run repairs is decided when it is asked for: as the admin
says, or else as the zone's ``reconcile`` policy says.

The schedule: each pass queues a reconciliation of every zone whose latest report was asked for
``reconcile_interval_s`` ago or more (0: never, only on demand), ends reports that no worker
finished in ``STALE_AFTER`` (their message was lost). Old reports are deleted by the recovery
job (service/operations/retention.py, ``reconciliation_retention_days``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from db.models import ReconcilePolicy, ReconcileStatus, ReconcileTrigger, Reconciliation, Scope, Zone, utcnow
from db.schemas import ReconciliationPublic
from service.core.dispatch import Dispatcher
from service.core.errors import DependencyUnavailable, InvalidRequest, NotFound, Violation
from service.core.settings import Settings
from service.dns.names import BadName, normalize_name
from service.registry import zones
from service.registry.clients import Principal

logger = logging.getLogger(__name__)

DIFFERENCES_PAGE = 1000  # a report may list every unmanaged RRset of a zone: it is read a page at a time
STALE_AFTER = timedelta(hours=2)
UNFINISHED = (ReconcileStatus.queued, ReconcileStatus.running)


def ask(
    engine: Engine, dispatcher: Dispatcher, principal: Principal, *, zone: str, repair: bool | None
) -> Reconciliation:
    """Queue a reconciliation of ``zone`` for an admin; ``repair`` None: as the zone's policy says."""
    principal.require(Scope.admin)
    with Session(engine) as session:
        found = zones.get_zone(session, zone)
        report = _open(session, found, ReconcileTrigger.on_demand, repair, requested_by=principal.name)
    _enqueue(engine, dispatcher, report)
    return report


def _open(
    session: Session, zone: Zone, trigger: ReconcileTrigger, repair: bool | None, *, requested_by: str | None
) -> Reconciliation:
    report = Reconciliation(
        zone_id=zone.id,
        zone=zone.name,
        trigger=trigger,
        repair=repair if repair is not None else zone.reconcile == ReconcilePolicy.repair,
        requested_by=requested_by,
    )
    session.add(report)
    session.commit()
    session.refresh(report)
    return report


def _enqueue(engine: Engine, dispatcher: Dispatcher, report: Reconciliation) -> None:
    assert report.id is not None
    try:
        dispatcher.enqueue_reconcile(report.id)
    except DependencyUnavailable as exc:
        with Session(engine) as session:
            stored = session.get(Reconciliation, report.id, with_for_update=True)
            if stored is not None:
                stored.status, stored.error, stored.finished_at = ReconcileStatus.error, exc.detail, utcnow()
                session.add(stored)
                session.commit()
        raise
    logger.info(
        "reconciliation %d of zone %s queued (%s, %s)",
        report.id,
        report.zone,
        report.trigger,
        "repair" if report.repair else "report only",
        extra={"zone": report.zone, "report_id": report.id, "trigger": report.trigger, "repair": report.repair},
    )


def latest(
    session: Session, principal: Principal, *, zone: str, limit: int = DIFFERENCES_PAGE, cursor: str | None = None
) -> ReconciliationPublic:
    """The zone's latest report (the one asked for last), finished or not."""
    found = _readable_zone(session, principal, zone)
    statement = (
        select(Reconciliation)
        .where(Reconciliation.zone_id == found.id)
        .order_by(col(Reconciliation.requested_at).desc(), col(Reconciliation.id).desc())
        .limit(1)
    )
    report = session.exec(statement).first()
    if report is None:
        raise NotFound(f"zone {found.name} has not been reconciled yet", code="reconciliation_not_found")
    return public(report, limit=limit, cursor=cursor)


def get_report(
    session: Session,
    principal: Principal,
    *,
    zone: str,
    report_id: int,
    limit: int = DIFFERENCES_PAGE,
    cursor: str | None = None,
) -> ReconciliationPublic:
    found = _readable_zone(session, principal, zone)
    report = session.get(Reconciliation, report_id)
    if report is None or report.zone_id != found.id:
        raise NotFound(f"zone {found.name} has no reconciliation {report_id}", code="reconciliation_not_found")
    return public(report, limit=limit, cursor=cursor)


def _readable_zone(session: Session, principal: Principal, zone: str) -> Zone:
    """The zone, once the client may read it: nothing is said about a zone not granted."""
    try:
        name = normalize_name(zone)
    except BadName as exc:
        raise NotFound(f"no zone is named {zone!r}", code="zone_not_found") from exc
    principal.require(Scope.read, [name])
    return zones.get_zone(session, name)


def public(report: Reconciliation, *, limit: int = DIFFERENCES_PAGE, cursor: str | None = None) -> ReconciliationPublic:
    """The report with one page of its differences: ``limit`` of them from ``cursor`` (an offset)."""
    start = _offset(cursor)
    page = report.differences[start : start + limit]
    following = start + len(page)
    found = ReconciliationPublic.model_validate(
        {
            **{name: getattr(report, name) for name in ReconciliationPublic.model_fields if hasattr(report, name)},
            "differences": page,
            "differences_total": len(report.differences),
            "next_cursor": str(following) if following < len(report.differences) else None,
        }
    )
    return found


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 9:
        raise InvalidRequest([Violation("cursor", "use the next_cursor of the page before")])
    return int(cursor)


def due(latest_asked: Mapping[str, datetime | None], *, now: datetime, interval_s: float) -> list[str]:
    """The zones to reconcile now: never reconciled, or last asked for ``interval_s`` ago or more."""
    if interval_s <= 0:
        return []
    before = now - timedelta(seconds=interval_s)
    return sorted(zone for zone, asked in latest_asked.items() if asked is None or asked <= before)


@dataclass
class Scheduled:
    queued: int = 0
    ended: int = 0


def schedule(engine: Engine, dispatcher: Dispatcher, settings: Settings, now: datetime | None = None) -> Scheduled:
    """One pass of the schedule (see the module's docstring)."""
    now = now or utcnow()
    done = Scheduled()
    with Session(engine) as session:
        done.ended = _end_stale(session, now)
        asked = dict(
            session.exec(
                select(Zone.name, func.max(Reconciliation.requested_at))
                .join(Reconciliation, col(Reconciliation.zone_id) == col(Zone.id), isouter=True)
                .group_by(col(Zone.name))
            ).all()
        )
    for name in due(asked, now=now, interval_s=settings.reconcile_interval_s):
        with Session(engine) as session:
            zone = session.exec(select(Zone).where(Zone.name == name)).first()
            if zone is None:  # unregistered meanwhile
                continue
            report = _open(session, zone, ReconcileTrigger.periodic, None, requested_by=None)
        try:
            _enqueue(engine, dispatcher, report)
        except DependencyUnavailable as exc:
            logger.warning("zone %s not reconciled now: %s", name, exc.detail)
            break  # the broker is away: the next pass tries again
        done.queued += 1
    if done.queued or done.ended:
        logger.info(
            "reconciliation schedule: %d queued, %d stale ended",
            done.queued,
            done.ended,
            extra={"queued": done.queued, "ended": done.ended},
        )
    return done


def _end_stale(session: Session, now: datetime) -> int:
    stale = session.exec(
        select(Reconciliation)
        .where(col(Reconciliation.status).in_(UNFINISHED), col(Reconciliation.requested_at) < now - STALE_AFTER)
        .with_for_update(skip_locked=True)
    ).all()
    for report in stale:
        report.status = ReconcileStatus.error
        report.error = f"no worker finished it within {STALE_AFTER.total_seconds() / 3600:g} hours"
        report.finished_at = now
        session.add(report)
    session.commit()
    return len(stale)
