"""``hostmaster clients create|list|quota|rotate|revoke``: API clients, their keys and quotas."""

from __future__ import annotations

import argparse
import json
import sys

from sqlmodel import Session

from db.models import ApiClient, Scope
from db.schemas import ClientPublic
from service.core.errors import NotFound
from service.core.settings import get_settings
from service.dns.names import shown
from service.registry import clients, quotas


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
