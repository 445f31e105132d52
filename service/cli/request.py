"""``hostmaster requests show|list``: the request tracker, as an operator reads it in a terminal."""

from __future__ import annotations

import argparse

from sqlmodel import Session

from db.models import RequestStatus
from service.cli.operator import OPERATOR
from service.requests import timeline, tracker


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    requests = commands.add_parser("requests", help="the request tracker").add_subparsers(dest="action", required=True)
    show = requests.add_parser("show", help="a request: status, changes and the timeline of its steps")
    show.add_argument("request_id")
    show.add_argument("--json", action="store_true", help="as the API shows it")
    show.set_defaults(handler=_requests_show)
    latest = requests.add_parser("list", help="the latest requests, newest first, as JSON lines")
    latest.add_argument("--status", choices=[status.value for status in RequestStatus])
    latest.add_argument("--limit", type=int, default=50)
    latest.set_defaults(handler=_requests_list)


def _requests_show(session: Session, args: argparse.Namespace) -> int:
    request = tracker.describe_request(session, OPERATOR, request_id=args.request_id)
    print(request.model_dump_json(indent=2) if args.json else timeline.render(request))
    return 0


def _requests_list(session: Session, args: argparse.Namespace) -> int:
    for request in timeline.recent(session, status=args.status, limit=max(1, min(args.limit, 10_000))):
        print(timeline.summary(request))
    return 0
