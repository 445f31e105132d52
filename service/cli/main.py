"""The ``hostmaster`` command: register zones and run the processes.

hostmaster zone add example.test --primary 127.0.0.1:15353 --key hostmaster-key
hostmaster zone list
hostmaster reconcile example.test [--repair | --no-repair] [--wait SECONDS]
hostmaster requests show REQUEST_ID        status, changes and the step timeline
hostmaster requests list [--status S] [--limit N]
hostmaster clients create|list|quota|rotate|revoke …
hostmaster dlq list | redrive ID|--all | purge --yes
hostmaster recover
hostmaster run api [--host H] [--port P] [--workers N]
hostmaster run worker [dramatiq options]
hostmaster run consumer
hostmaster run recovery
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from db.engine import make_engine
from db.models import ApiClient, ReconcileStatus, RequestStatus, Scope
from db.schemas import ClientPublic, ReconciliationPublic, ZoneCreate
from service.cli.supervise import supervise
from service.core.dispatch import Dispatcher, make_broker
from service.core.errors import HostmasterError, InvalidRequest, NotFound, Violation
from service.core.logs import configure_logging, uvicorn_log_config
from service.core.settings import Settings, SettingsError, get_settings
from service.dns.names import shown
from service.dns.validation import violations_from_pydantic
from service.operations import deadletters, reconciliation, recovery
from service.registry import clients, quotas, zones
from service.registry.clients import ALL_ZONES, Principal
from service.requests import timeline, tracker

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not (args.command == "run" and args.process == "worker"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"hostmaster: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        return _run(args, rest)
    configure_logging("cli", "WARNING")
    engine = make_engine(settings.database_dsn, pool_size=1, max_overflow=0)
    try:
        with Session(engine) as session:
            return int(args.handler(session, args))
    except ValidationError as exc:
        for violation in violations_from_pydantic(exc):
            print(f"hostmaster: {violation.field}: {violation.message}", file=sys.stderr)
        return 2
    except InvalidRequest as exc:
        for violation in exc.violations:
            print(f"hostmaster: {violation.field}: {violation.message}", file=sys.stderr)
        return 2
    except HostmasterError as exc:
        print(f"hostmaster: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _zone_add(session: Session, args: argparse.Namespace) -> int:
    host, port = _host_port(args.primary)
    zone_in = ZoneCreate(
        name=args.name,
        primary_host=host,
        primary_port=port,
        tsig_key_name=args.key,
        tsig_algorithm=args.algorithm,
        min_ttl=args.min_ttl,
        max_ttl=args.max_ttl,
        default_ttl=args.default_ttl,
        reconcile=args.reconcile,
    )
    zone = zones.register_zone(session, zone_in, update_existing=args.update)
    print(f"zone {zone.name} registered: primary {zone.primary_host}:{zone.primary_port}, key {zone.tsig_key_name}")
    return 0


def _host_port(text: str) -> tuple[str, int]:
    """HOST, HOST:PORT, IPv6 or [IPv6]:PORT."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and not port.isdigit():
        raise InvalidRequest([Violation("primary", f"{shown(text)}: the port must be a number")])
    return host, int(port or 53)


def _client_create(session: Session, args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.rotate_if_exists:
        try:
            clients.get_client(session, args.name)
        except NotFound:
            pass
        else:
            return _client_rotate(session, args)
    client, key = clients.create_client(
        session,
        name=args.name,
        scopes=args.scope,
        zones=args.zone or [],
        pepper=settings.pepper,
        max_rrsets=args.max_rrsets,
        max_changes_per_day=args.max_changes_per_day,
    )
    _print_key(client, key)
    return 0


def _client_quota(session: Session, args: argparse.Namespace) -> int:
    """Set the quotas given (``default``: the service's); print what the client uses of them."""
    asked = {field: getattr(args, field) for field in clients.QUOTA_FIELDS if getattr(args, field) is not _UNSET}
    if asked:
        client = clients.set_quotas(session, name=args.name, quotas=asked)
    else:
        client = clients.get_client(session, args.name)
    quota = clients.principal_of(client, quotas.defaults(get_settings())).quota
    use = quotas.usage_of(session, client)

    def limit(value: int | None, own: int | None) -> str:
        return ("no limit" if value is None else str(value)) + ("" if own is not None else " (the default)")

    print(f"client {client.name}")
    print(f"  RRsets:          {use.rrsets} of {limit(quota.rrsets, client.max_rrsets)}")
    print(
        f"  changes today:   {use.changes_today} of {limit(quota.changes_per_day, client.max_changes_per_day)}"
        f" (counted again from {use.resets_at:%Y-%m-%d %H:%M} UTC)"
    )
    return 0


_UNSET = object()


def _quota_value(text: str) -> int | None:
    """A quota given on the command line: a number, or ``default`` for the service's default."""
    if text == "default":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{shown(text)}: give a number of 0 or more, or default")
    return int(text)


def _client_rotate(session: Session, args: argparse.Namespace) -> int:
    client, key = clients.rotate_key(session, name=args.name, pepper=get_settings().pepper)
    _print_key(client, key)
    return 0


def _client_revoke(session: Session, args: argparse.Namespace) -> int:
    client = clients.revoke(session, name=args.name)
    print(f"client {client.name} revoked")
    return 0


def _client_list(session: Session, args: argparse.Namespace) -> int:
    for client in clients.list_clients(session):
        shown_client = ClientPublic.model_validate(client, from_attributes=True)
        print(json.dumps(shown_client.model_dump(mode="json")))
    return 0


def _quota_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--max-rrsets",
        type=_quota_value,
        default=default,
        metavar="N|default",
        help="RRsets the client may have created (default: HOSTMASTER_QUOTA_RRSETS)",
    )
    parser.add_argument(
        "--max-changes-per-day",
        type=_quota_value,
        default=default,
        metavar="N|default",
        help="changes its writes may hold in one UTC day (default: HOSTMASTER_QUOTA_CHANGES_PER_DAY)",
    )


def _print_key(client: ApiClient, key: str) -> None:
    """The key on stdout alone (for scripts); what it is on stderr."""
    grants = ", ".join(client.zones) or "none"
    print(
        f"client {client.name} ({', '.join(client.scopes)}; zones {grants}); its key, shown only now:", file=sys.stderr
    )
    print(key)


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


# The CLI acts for an operator who holds the database: an admin.
_OPERATOR = Principal("cli", frozenset({Scope.admin.value}), (ALL_ZONES,))


def _reconcile(session: Session, args: argparse.Namespace) -> int:
    """Queue a reconciliation of each zone; with --wait, show the reports. Exit 1 while drift remains."""
    settings = get_settings()
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    broker = make_broker(settings)
    try:
        dispatcher = Dispatcher(broker, settings.queue_name)
        reports = [
            reconciliation.ask(engine, dispatcher, _OPERATOR, zone=zone, repair=args.repair) for zone in args.zones
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
            report = reconciliation.get_report(session, _OPERATOR, zone=zone, report_id=report_id)
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


def _run_recovery(settings: Settings) -> int:
    """One recovery pass every ``recovery_interval_s`` until SIGTERM or SIGINT; each pass also
    queues the reconciliations that are due (``reconcile_interval_s``; 0: none)."""
    configure_logging("recovery", settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    engine = make_engine(settings.database_dsn, pool_size=1, max_overflow=1)
    broker = make_broker(settings)
    dispatcher = Dispatcher(broker, settings.queue_name)
    logger.info(
        "recovery every %.0f s; each zone reconciled every %.0f s (0: only on demand)",
        settings.recovery_interval_s,
        settings.reconcile_interval_s,
    )
    while not stop.is_set():
        try:
            recovery.recover(engine, dispatcher, settings)
        except Exception:  # a pass that fails (database away) is tried again next time
            logger.exception("recovery pass failed")
        try:
            reconciliation.schedule(engine, dispatcher, settings)
        except Exception:  # likewise
            logger.exception("reconciliation schedule failed")
        stop.wait(settings.recovery_interval_s)
    broker.close()
    engine.dispose()
    return 0


def _requests_show(session: Session, args: argparse.Namespace) -> int:
    request = tracker.describe_request(session, _OPERATOR, request_id=args.request_id)
    print(request.model_dump_json(indent=2) if args.json else timeline.render(request))
    return 0


def _requests_list(session: Session, args: argparse.Namespace) -> int:
    for request in timeline.recent(session, status=args.status, limit=max(1, min(args.limit, 10_000))):
        print(timeline.summary(request))
    return 0


def _zone_list(session: Session, args: argparse.Namespace) -> int:
    for zone in zones.list_zones(session):
        print(json.dumps(zone.model_dump(mode="json")))
    return 0


_PACKAGE = {"worker": "workers", "consumer": "consumer"}


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    settings = get_settings()
    if args.process == "recovery":
        return _run_recovery(settings)
    if args.process in ("worker", "consumer"):  # each its package's entry point, under the supervisor
        configure_logging("supervisor", settings.log_level)
        command = [sys.executable, "-m", _PACKAGE[args.process], *rest]
        final = frozenset({2}) if args.process == "consumer" else frozenset()  # 2: its configuration is wrong
        return supervise(command, name=args.process, final=final)
    import uvicorn

    uvicorn.run(
        "service.app:app",
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        workers=args.workers,
        log_config=uvicorn_log_config("api", settings.log_level),
        proxy_headers=True,
        http="httptools",  # the C parser and event loop: h11 and asyncio cost more CPU per request than our handler
        loop="uvloop",
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hostmaster", description="Hostmaster DNS provisioning")
    commands = parser.add_subparsers(dest="command", required=True)

    zone = commands.add_parser("zone", aliases=["zones"], help="registered zones").add_subparsers(
        dest="action", required=True
    )
    add = zone.add_parser("add", help="register a zone")
    add.add_argument("name", help="zone name, e.g. example.test")
    add.add_argument("--primary", required=True, help="primary server as HOST[:PORT]")
    add.add_argument("--key", required=True, help="TSIG key name (its secret comes from the secrets provider)")
    add.add_argument("--algorithm", default="hmac-sha256")
    add.add_argument("--min-ttl", type=int, default=60)
    add.add_argument("--max-ttl", type=int, default=86400)
    add.add_argument("--default-ttl", type=int, default=3600)
    add.add_argument(
        "--reconcile", choices=["report", "repair"], default="report", help="what reconciliation does with drift"
    )
    add.add_argument(
        "--update", action="store_true", help="if the zone is registered, update its primary, key and TTL policy"
    )
    add.set_defaults(handler=_zone_add)
    zone.add_parser("list", help="list registered zones as JSON lines").set_defaults(handler=_zone_list)

    client = commands.add_parser("clients", help="API clients").add_subparsers(dest="action", required=True)
    create = client.add_parser("create", help="create a client and print its key once")
    create.add_argument("name")
    create.add_argument("--scope", action="append", required=True, choices=[scope.value for scope in Scope])
    create.add_argument("--zone", action="append", help="zone granted: NAME, *.NAME (subtree) or * (all)")
    create.add_argument("--rotate-if-exists", action="store_true", help="give an existing client a new key instead")
    _quota_options(create, default=None)
    create.set_defaults(handler=_client_create)
    quota = client.add_parser("quota", help="show what a client uses of its quotas, and set them")
    quota.add_argument("name")
    _quota_options(quota, default=_UNSET)
    quota.set_defaults(handler=_client_quota)
    for action, handler, text in (
        ("rotate", _client_rotate, "a new key"),
        ("revoke", _client_revoke, "revoke the key"),
    ):
        sub = client.add_parser(action, help=text)
        sub.add_argument("name")
        sub.set_defaults(handler=handler)
    client.add_parser("list", help="list clients as JSON lines (never a key)").set_defaults(handler=_client_list)

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

    requests = commands.add_parser("requests", help="the request tracker").add_subparsers(dest="action", required=True)
    show = requests.add_parser("show", help="a request: status, changes and the timeline of its steps")
    show.add_argument("request_id")
    show.add_argument("--json", action="store_true", help="as the API shows it")
    show.set_defaults(handler=_requests_show)
    latest = requests.add_parser("list", help="the latest requests, newest first, as JSON lines")
    latest.add_argument("--status", choices=[status.value for status in RequestStatus])
    latest.add_argument("--limit", type=int, default=50)
    latest.set_defaults(handler=_requests_list)

    run = commands.add_parser("run", help="run a process in the foreground")
    run.add_argument("process", choices=["api", "worker", "consumer", "recovery"])
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (api)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
