"""``hostmaster recover``, ``reconcile`` and ``dlq``: an operator's upkeep of the service."""

from __future__ import annotations

import argparse
import json
import sys
import time

from sqlalchemy import Engine
from sqlmodel import Session

from db.models import ReconcileStatus
from db.schemas import ReconciliationPublic
from service.cli.operator import OPERATOR
from service.core.dispatch import Dispatcher, make_broker
from service.core.settings import get_settings
from service.operations import deadletters, reconciliation, recovery


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("recover", help="one pass of the recovery job").set_defaults(handler=_recover)
    reconcile = commands.add_parser(
        "reconcile",
        help="compare zones as their primaries serve them with the desired state (exit 1 while drift remains)",
    )
    reconcile.add_argument("zones", nargs="+", metavar="ZONE")
    reconcile.add_argument(
        "--repair",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send the desired state again where it differs (default: as the zone's reconcile policy says)",
    )
    reconcile.add_argument(
        "--wait", type=float, metavar="SECONDS", help="wait this long for the reports and print their differences"
    )
    reconcile.set_defaults(handler=_reconcile)
    dlq = commands.add_parser("dlq", help="the dead-letter queue").add_subparsers(dest="action", required=True)
    dlq.add_parser("list", help="dead letters and why, as JSON lines").set_defaults(handler=_dlq)
    redrive = dlq.add_parser("redrive", help="re-drive with a full retry budget")
    which = redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("message_id", nargs="?")
    which.add_argument("--all", action="store_true")
    redrive.set_defaults(handler=_dlq)
    purge = dlq.add_parser("purge", help="drop every dead letter")
    purge.add_argument("--yes", action="store_true", help="yes, drop them")
    purge.set_defaults(handler=_dlq)


def _recover(session: Session, args: argparse.Namespace) -> int:
    settings = get_settings()
    broker = make_broker(settings)
    try:
        done = recovery.recover(session.get_bind(), Dispatcher(broker, settings.queue_name), settings)  # type: ignore[arg-type]
    finally:
        broker.close()
    print(
        f"{done.requeued} queued again, {done.abandoned} abandoned, {done.timed_out} timed out; "
        f"past their retention: {done.pruned.requests} ended requests, {done.pruned.reports} reports and "
        f"{done.pruned.sessions} console sessions deleted"
    )
    return 0


def _reconcile(session: Session, args: argparse.Namespace) -> int:
    """Queue a reconciliation of each zone; with --wait, show the reports. Exit 1 while drift remains."""
    settings = get_settings()
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    broker = make_broker(settings)
    try:
        dispatcher = Dispatcher(broker, settings.queue_name)
        reports = [
            reconciliation.ask(engine, dispatcher, OPERATOR, zone=zone, repair=args.repair) for zone in args.zones
        ]
    finally:
        broker.close()
    for report in reports:
        print(f"zone {report.zone}: reconciliation {report.id} queued ({'repair' if report.repair else 'report only'})")
    if args.wait is None:
        return 0
    deadline = time.monotonic() + args.wait
    found = [_finished_report(engine, report.zone, report.id, deadline) for report in reports]
    for shown_report in found:
        if shown_report is not None:
            _print_report(shown_report)
    settled = (ReconcileStatus.in_sync, ReconcileStatus.repaired)
    if any(report is None for report in found):
        print(f"hostmaster: not every reconciliation finished within {args.wait:g} s", file=sys.stderr)
        return 1
    return 0 if all(report is not None and report.status in settled for report in found) else 1


def _finished_report(engine: Engine, zone: str, report_id: int | None, deadline: float) -> ReconciliationPublic | None:
    assert report_id is not None
    while True:
        with Session(engine) as session:
            report = reconciliation.get_report(session, OPERATOR, zone=zone, report_id=report_id)
        if report.status not in (ReconcileStatus.queued, ReconcileStatus.running):
            return report
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


def _print_report(report: ReconciliationPublic) -> None:
    print(
        f"zone {report.zone}: {report.status} ({report.compared} compared, {report.drifted} drifted, "
        f"{report.repaired} repaired, {report.unmanaged} unmanaged, {report.skipped} skipped)"
    )
    if report.error:
        print(f"  error: {report.error}")
    for difference in report.differences:
        desired = f"{difference.desired.ttl} {' '.join(difference.desired.values)}" if difference.desired else "nothing"
        served = f"{difference.served.ttl} {' '.join(difference.served.values)}" if difference.served else "nothing"
        outcome = (
            " (repaired)" if difference.repaired else f" (not repaired: {difference.error})" if difference.error else ""
        )
        print(f"  {difference.kind} {difference.name} {difference.type}: desired {desired}; served {served}{outcome}")


def _dlq(session: Session, args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    if args.action == "list":
        for dead in deadletters.list_dead(engine, settings):
            print(json.dumps(dead.__dict__))
        return 0
    if args.action == "purge":
        if not args.yes:
            print("hostmaster: purging drops every dead letter; add --yes", file=sys.stderr)
            return 2
        print(f"{deadletters.purge(settings)} purged")
        return 0
    broker = make_broker(settings)
    try:
        redriven = deadletters.redrive(
            engine,
            settings,
            Dispatcher(broker, settings.queue_name),
            message_id=None if args.all else args.message_id,
        )
    finally:
        broker.close()
    print(f"{len(redriven)} re-driven: {' '.join(redriven)}")
    return 0
