"""``hostmaster zone add|list``: the zones Hostmaster may change."""

from __future__ import annotations

import argparse
import json

from sqlmodel import Session

from db.schemas import ZoneCreate
from service.core.errors import InvalidRequest, Violation
from service.dns.names import shown
from service.registry import zones


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _zone_list(session: Session, args: argparse.Namespace) -> int:
    for zone in zones.list_zones(session):
        print(json.dumps(zone.model_dump(mode="json")))
    return 0
