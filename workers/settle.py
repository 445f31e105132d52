"""Recording a pass's outcome: every change, RRset, request and step in a few multi-row statements.

Each statement takes its rows as arrays (``unnest``), so its cost in round trips does not grow
with the number of requests a pass applied: one UPDATE for all changes, one for all RRsets
(proven: ``active`` with what was applied; failed: ``error``), one DELETE for the RRsets proven
gone, one UPDATE for all requests and one INSERT for all steps. The caller commits.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from db.models import utcnow
from db.unnest import columns
from service.requests import tracker
from service.requests.payloads import storable

_CHANGES = text(
    """
    UPDATE request_change AS c SET status = v.status, error_code = v.code, error_detail = v.detail
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:codes AS text[]), CAST(:details AS text[]))
        AS v(id, status, code, detail)
    WHERE c.id = v.id
    """
)
_RRSETS = text(
    """
    UPDATE rrset AS r SET status = v.status, applied = COALESCE(CAST(v.applied AS jsonb), r.applied), updated_at = :now
    FROM unnest(CAST(:ids AS int[]), CAST(:statuses AS text[]), CAST(:applied AS text[])) AS v(id, status, applied)
    WHERE r.id = v.id
    """
)
_DELETE = text("DELETE FROM rrset WHERE id = ANY(CAST(:ids AS int[]))")
_REQUESTS = text(
    """
    UPDATE request AS r SET status = v.status, attempts = v.attempts, error_code = v.code, error_detail = v.detail,
        updated_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:attempts AS int[]), CAST(:codes AS text[]),
        CAST(:details AS text[])) AS v(id, status, attempts, code, detail)
    WHERE r.id = v.id
    """
)


@dataclass
class Outcome:
    """What a pass found, row by row, to be written at once."""

    changes: list[tuple[int, str, str | None, str | None]] = field(default_factory=list)  # id, status, code, detail
    rrsets: dict[int, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)  # id → status, applied
    deleted: set[int] = field(default_factory=set)  # RRset rows proven gone
    requests: list[tuple[uuid.UUID, str, int, str | None, str | None]] = field(default_factory=list)
    events: list[tracker.EventRow] = field(default_factory=list)

    def change(self, change_id: int, status: str, code: str | None = None, detail: str | None = None) -> None:
        self.changes.append((change_id, status, code, detail))

    def request(
        self, request_id: uuid.UUID, status: str, attempts: int, code: str | None = None, detail: str | None = None
    ) -> None:
        self.requests.append((request_id, status, attempts, code, storable(detail) if detail else None))


def record(session: Session, outcome: Outcome) -> None:
    """Write ``outcome`` in the session's transaction (the caller commits)."""
    now = utcnow()
    if outcome.changes:
        session.execute(_CHANGES, columns(outcome.changes, "ids", "statuses", "codes", "details"))
    rrsets = [(rrset_id, status, _json(applied)) for rrset_id, (status, applied) in outcome.rrsets.items()]
    if rrsets:
        session.execute(_RRSETS, {**columns(rrsets, "ids", "statuses", "applied"), "now": now})
    if outcome.deleted:
        session.execute(_DELETE, {"ids": sorted(outcome.deleted)})
    if outcome.requests:
        rows = [(str(request_id), *rest) for request_id, *rest in outcome.requests]
        session.execute(_REQUESTS, {**columns(rows, "ids", "statuses", "attempts", "codes", "details"), "now": now})
    tracker.insert_events(session, outcome.events)


def _json(applied: dict[str, Any] | None) -> str | None:
    return json.dumps(applied) if applied is not None else None
