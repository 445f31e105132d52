"""Reconciliation: read a zone from its primary (AXFR), compare it with the desired state, repair.

One run reads the zone's RRset rows, transfers the zone, reads the rows again and compares
(workers/comparison.py says what counts as a difference). An RRset with a request in flight
(``pending``, ``deleting``), or changed while the zone was read, is skipped: that request makes
it right, and a comparison now would only race it.

With repair (the zone's ``reconcile`` policy, or an admin asking) every missing, different or
not deleted RRset is sent again as desired, with no prerequisite, while its row is locked; then
it is queried, and a proven one is recorded as applied, as after a request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, select

from db.models import ReconcileStatus, Reconciliation, RRset, RRsetStatus, Zone, utcnow
from service.core.errors import DnsError, PermanentDnsError, TransientDnsError
from service.core.secrets import SecretUnavailable, tsig_secret
from service.core.settings import Settings
from service.planning.desired import Content, Key
from workers import apply, rfc2136
from workers.comparison import Comparison, Desired, Difference, compare

logger = logging.getLogger(__name__)

IN_FLIGHT = frozenset({RRsetStatus.pending, RRsetStatus.deleting})


@dataclass(frozen=True)
class Target:
    """What a run needs of its report and zone, read once at its start."""

    report_id: int
    zone_id: int
    zone: str
    server: rfc2136.Server
    key_name: str
    key_algorithm: str
    repair: bool
    trigger: str


def reconcile(engine: Engine, settings: Settings, report_id: int, attempt: apply.Attempt) -> None:
    """Run one attempt at the reconciliation ``report_id``.

    Raises TransientDnsError only when another attempt follows; the last attempt records
    the failure in the report instead, so a reconciliation never lands in the dead-letter
    queue (the schedule, or an admin, asks again).
    """
    target = _start(engine, settings, report_id, attempt)
    if target is None:
        return
    started = time.perf_counter()
    try:
        comparison = _reconcile_zone(engine, settings, target)
    except TransientDnsError as exc:
        if not attempt.final:
            _record_failure(engine, report_id, f"attempt {attempt.number}: {exc.detail}; trying again", final=False)
            raise
        _record_failure(engine, report_id, f"{exc.code}: {exc.detail}", final=True)
        return
    except (PermanentDnsError, SecretUnavailable) as exc:
        _record_failure(engine, report_id, f"{exc.code}: {exc.detail}", final=True)
        return
    _finish(engine, target, comparison, round((time.perf_counter() - started) * 1000, 1))


def _start(engine: Engine, settings: Settings, report_id: int, attempt: apply.Attempt) -> Target | None:
    with Session(engine) as session:
        report = session.get(Reconciliation, report_id, with_for_update=True)
        if report is None:
            logger.warning("reconciliation %d does not exist; nothing to do", report_id)
            return None
        if ReconcileStatus(report.status).finished:
            logger.info("reconciliation %d already %s; nothing to do", report_id, report.status)
            return None
        zone = session.get(Zone, report.zone_id) if report.zone_id is not None else None
        if zone is None or zone.id is None:
            _end_with_error(report, "the zone was unregistered before it was reconciled")
            session.add(report)
            session.commit()
            return None
        report.status = ReconcileStatus.running
        report.started_at = utcnow()
        report.attempts = attempt.number
        session.add(report)
        session.commit()
        return Target(
            report_id=report_id,
            zone_id=zone.id,
            zone=zone.name,
            server=rfc2136.Server(zone.primary_host, zone.primary_port, settings.dns_timeout_s),
            key_name=zone.tsig_key_name,
            key_algorithm=zone.tsig_algorithm,
            repair=report.repair,
            trigger=report.trigger,
        )


def _reconcile_zone(engine: Engine, settings: Settings, target: Target) -> Comparison:
    key = rfc2136.TsigKey(
        target.key_name, target.key_algorithm, tsig_secret(settings, target.key_name).get_secret_value()
    )
    with Session(engine) as session:
        before = {_row_key(row): (row.version, row.status) for row in _rows(session, target.zone_id)}
    served = rfc2136.transfer(target.zone, key, target.server)
    with Session(engine) as session:
        rows = _rows(session, target.zone_id)
    desired = [
        Desired(
            row.owner,
            row.rtype,
            row.ttl,
            tuple(row.values),
            in_flight=row.status in IN_FLIGHT or before.get(_row_key(row)) != (row.version, row.status),
        )
        for row in rows
    ]
    gone = before.keys() - {_row_key(row) for row in rows}  # deleted while the zone was read
    desired += [Desired(owner, rtype, 0, (), in_flight=True) for owner, rtype in sorted(gone)]
    comparison = compare(target.zone, desired, served)
    if target.repair:
        versions = {_row_key(row): row.version for row in rows}
        _repair(engine, target, key, comparison.drift, versions)
    return comparison


def _rows(session: Session, zone_id: int) -> list[RRset]:
    return list(session.exec(select(RRset).where(RRset.zone_id == zone_id)).all())


def _row_key(row: RRset) -> Key:
    return (row.owner, row.rtype)


def _repair(
    engine: Engine, target: Target, key: rfc2136.TsigKey, drift: Sequence[Difference], versions: Mapping[Key, int]
) -> None:
    """Send the desired state of each drifted RRset again, prove it, record it; note on each how it went."""
    if not drift:
        return
    with Session(engine) as session:
        rows = apply.lock_rrsets(session, target.zone_id, [difference.key for difference in drift])
        changes: list[rfc2136.RRsetChange] = []
        for difference in drift:
            row = rows.get(difference.key)
            if row is None or row.version != versions.get(difference.key) or row.status in IN_FLIGHT:
                difference.error = "a request changed the RRset while the zone was compared; left to that request"
                continue
            changes.append(rfc2136.RRsetChange(row.owner, row.rtype, row.ttl, tuple(row.values)))
        failures = _send(target, key, changes)
        sent = [change.key for change in changes if change.key not in failures]
        try:
            served = rfc2136.served_rrsets(sent, target.server) if sent else {}
        except TransientDnsError as exc:
            failures.update({item: f"sent, but could not be verified: {exc.detail}" for item in sent})
            served = {}
        by_key = {difference.key: difference for difference in drift}
        for change in changes:
            difference = by_key[change.key]
            found = served.get(change.key)
            if change.key in failures:
                difference.error = failures[change.key]
            elif rfc2136.matches(found, change.rtype, change.ttl, change.values):
                difference.repaired = True
                apply.settle_rrset(session, rows[change.key], change)
            else:
                difference.error = (
                    f"the server answered NOERROR but serves {rfc2136.served_text(found)}: it ignored the update"
                )
        session.commit()


def _send(target: Target, key: rfc2136.TsigKey, changes: list[rfc2136.RRsetChange]) -> dict[Key, str]:
    """Send the changes in as few UPDATEs as fit; return why each RRset that failed did."""
    failures: dict[Key, str] = {}
    for batch in rfc2136.batches(changes):
        try:
            rfc2136.send_update(rfc2136.update_message(target.zone, batch, key), target.server)
        except DnsError as exc:
            failures.update({item.key: f"{exc.code}: {exc.detail}" for item in batch})
    return failures


def _finish(engine: Engine, target: Target, comparison: Comparison, ms: float) -> None:
    drift = comparison.drift
    status = comparison.status
    counts = {
        "compared": comparison.compared,
        "skipped": comparison.skipped,
        "drifted": len(drift),
        "repaired": sum(1 for difference in drift if difference.repaired),
        "unmanaged": len(comparison.differences) - len(drift),
    }
    with Session(engine) as session:
        report = session.get(Reconciliation, target.report_id, with_for_update=True)
        assert report is not None
        for name, value in counts.items():
            setattr(report, name, value)
        report.status = status
        report.finished_at = utcnow()
        report.differences = [difference.as_json() for difference in comparison.differences]
        report.error = None
        session.add(report)
        session.commit()
    for difference in drift:
        logger.warning(
            "%s %s %s in zone %s: desired %s, served %s%s",
            difference.kind.value,
            difference.owner,
            difference.rtype,
            target.zone,
            _shown(difference.desired),
            _shown(difference.served),
            "; repaired" if difference.repaired else f"; not repaired: {difference.error}" if difference.error else "",
            extra={
                "zone": target.zone,
                "report_id": target.report_id,
                "owner": difference.owner,
                "rtype": difference.rtype,
                "kind": difference.kind.value,
                "repaired": difference.repaired,
            },
        )
    logger.info(
        "zone %s reconciled: %s (%d compared, %d drifted, %d repaired, %d unmanaged, %d skipped)",
        target.zone,
        status.value,
        counts["compared"],
        counts["drifted"],
        counts["repaired"],
        counts["unmanaged"],
        counts["skipped"],
        extra={
            "zone": target.zone,
            "report_id": target.report_id,
            "trigger": target.trigger,
            "repair": target.repair,
            "status": status.value,
            "ms": ms,
            **counts,
        },
    )


def _shown(found: Content | None) -> str:
    return f"{found.ttl} {' '.join(found.values)}" if found else "nothing"


def _record_failure(engine: Engine, report_id: int, reason: str, *, final: bool) -> None:
    with Session(engine) as session:
        report = session.get(Reconciliation, report_id, with_for_update=True)
        if report is None or ReconcileStatus(report.status).finished:
            return
        if final:
            _end_with_error(report, reason)
            logger.error(
                "zone %s could not be reconciled: %s",
                report.zone,
                reason,
                extra={"zone": report.zone, "report_id": report_id, "status": ReconcileStatus.error.value},
            )
        else:
            report.error = reason
            logger.warning("zone %s: %s", report.zone, reason, extra={"zone": report.zone, "report_id": report_id})
        session.add(report)
        session.commit()


def _end_with_error(report: Reconciliation, reason: str) -> None:
    report.status = ReconcileStatus.error
    report.error = reason
    report.finished_at = utcnow()


def record_unexpected_failure(engine: Engine, report_id: int, attempt: apply.Attempt, exc: BaseException) -> None:
    """Best effort: say in the report that an attempt died of something other than DNS."""
    reason = f"{type(exc).__name__} in the worker"
    try:
        if attempt.final:
            _record_failure(engine, report_id, f"internal: {reason}", final=True)
        else:
            _record_failure(engine, report_id, f"attempt {attempt.number}: {reason}; trying again", final=False)
    except Exception:
        logger.exception("could not record the failure of reconciliation %d", report_id)
