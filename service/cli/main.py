"""The ``hostmaster`` command: this module parses and maps errors; each command is a module of its
own (zone.py, client.py, request.py, upkeep.py for recover/reconcile/dlq, run.py), as octoDNS's cmds/:

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
import logging
import sys

from pydantic import ValidationError
from sqlmodel import Session

from db.engine import make_engine
from service.cli import client, request, run, upkeep, zone
from service.core.errors import HostmasterError, InvalidRequest
from service.core.logs import configure_logging
from service.core.settings import SettingsError, get_settings
from service.dns.validation import violations_from_pydantic

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
        return run.run(args, rest)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hostmaster", description="Hostmaster DNS provisioning")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (zone, client, upkeep, request, run):
        module.add_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
