"""A request as an operator reads it in a terminal: its outcome, its changes and the timeline of
its steps, each at its offset from the moment the request came (``hostmaster requests show``)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import Session, col, select

from db.models import Request
from db.schemas import RequestPublic

STEP_WIDTH = 16


def render(request: RequestPublic) -> str:
    lines = [
        f"request {request.request_id}  {request.status}"
        + (f" ({request.error_code}: {request.error_detail})" if request.error_code else ""),
        f"  {request.operation} from {request.source}"
        + (f" by {request.client}" if request.client else "")
        + f", {request.attempts} attempt{'s' if request.attempts != 1 else ''}, came {_at(request.created_at)}",
    ]
    if request.changes:
        lines.append("  changes:")
        for change in request.changes:
            after = change.after.values if change.after is not None else "(none)"
            failure = f" — {change.error_code}: {change.error_detail}" if change.error_code else ""
            lines.append(f"    {change.name} {change.type} {change.action} → {after}: {change.status}{failure}")
    lines.append("  timeline:")
    for event in request.events:
        offset = (event.at - request.created_at).total_seconds()
        detail = " ".join(f"{key}={_value(value)}" for key, value in event.detail.items())
        lines.append(f"    +{offset:9.3f} s  {event.step:<{STEP_WIDTH}} {event.component:<9} {detail}".rstrip())
    return "\n".join(lines)


def recent(session: Session, *, status: str | None, limit: int) -> list[Request]:
    """The latest requests, newest first, optionally only those in ``status``."""
    statement = select(Request).order_by(col(Request.created_at).desc()).limit(limit)
    if status is not None:
        statement = statement.where(Request.status == status)
    return list(session.exec(statement).all())


def summary(request: Request) -> str:
    return json.dumps(
        {
            "request_id": str(request.id),
            "status": request.status,
            "operation": request.operation,
            "source": request.source,
            "client": request.client,
            "created_at": request.created_at.isoformat(),
            "error_code": request.error_code,
        }
    )


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _value(value: object) -> str:
    return value if isinstance(value, str) and " " not in value else json.dumps(value)
