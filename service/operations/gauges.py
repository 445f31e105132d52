"""Metrics in the Prometheus text format (version 0.0.4), read from the database at each scrape.

Every value is a gauge computed from the tables, so every API process answers alike and
nothing is lost when one restarts. Per zone, from its latest finished reconciliation:

- ``hostmaster_zone_drift_rrsets``: RRsets still missing, different or not deleted after it;
- ``hostmaster_zone_unmanaged_rrsets``: RRsets served that Hostmaster does not manage;
- ``hostmaster_zone_reconciled_timestamp_seconds``: when it finished (Unix time);
- ``hostmaster_zone_reconcile_failed``: 1 when the latest run could not read the zone.

The first three come from the latest run that could read the zone, so an alert on drift
holds while the primary is away; alert on the timestamp's age for reconciliation that stopped.
``hostmaster_requests``: requests by status (every status, 0 included). The open ones are
counted at each scrape through the status index (as many rows as are open); the ended ones,
which grow with the table, at most once a minute per process (``EndedCounts``). Reports are
read as their counts, never their lists of differences.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from db.models import ReconcileStatus, Reconciliation, Request, RequestStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READ = (ReconcileStatus.in_sync, ReconcileStatus.drift, ReconcileStatus.repaired)
OPEN = tuple(status.value for status in RequestStatus if not status.terminal)
ENDED_STATUSES = tuple(status.value for status in RequestStatus if status.terminal)


def exposition(session: Session) -> str:
    read = _latest(session, READ)
    finished = _latest(session, (*READ, ReconcileStatus.error))
    requests = {**_open_requests(session), **ENDED.counts(session)}
    lines: list[str] = []
    _gauge(
        lines,
        "hostmaster_zone_drift_rrsets",
        "RRsets that differ from the desired state after the zone's latest reconciliation.",
        ((row.zone, row.drifted - row.repaired) for row in read),
    )
    _gauge(
        lines,
        "hostmaster_zone_unmanaged_rrsets",
        "RRsets the zone's primary serves that Hostmaster does not manage.",
        ((row.zone, row.unmanaged) for row in read),
    )
    _gauge(
        lines,
        "hostmaster_zone_reconciled_timestamp_seconds",
        "When the zone's latest reconciliation that read the zone finished (Unix time).",
        ((row.zone, _seconds(row.finished_at)) for row in read),
    )
    _gauge(
        lines,
        "hostmaster_zone_reconcile_failed",
        "1 when the zone's latest reconciliation could not read the zone.",
        ((row.zone, int(row.status == ReconcileStatus.error)) for row in finished),
    )
    lines += [
        "# HELP hostmaster_requests Requests by status.",
        "# TYPE hostmaster_requests gauge",
        *(
            f'hostmaster_requests{{status="{status.value}"}} {requests.get(status.value, 0)}'
            for status in RequestStatus
        ),
    ]
    return "\n".join(lines) + "\n"


def _open_requests(session: Session) -> dict[str, int]:
    """Requests not ended, by status: read through the status index, as many rows as are open."""
    statement = select(Request.status, func.count()).where(col(Request.status).in_(OPEN)).group_by(col(Request.status))
    return dict(session.exec(statement).all())


class EndedCounts:
    """Ended requests by status, counted at most once every ``every_s`` per process: the count
    reads every ended row, and Prometheus scrapes every few seconds."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._counts: dict[str, int] = {}
        self._at = -math.inf
        self._lock = threading.Lock()

    def counts(self, session: Session) -> dict[str, int]:
        with self._lock:
            if time.monotonic() - self._at >= self.every_s:
                statement = (
                    select(Request.status, func.count())
                    .where(col(Request.status).in_(ENDED_STATUSES))
                    .group_by(col(Request.status))
                )
                self._counts = dict(session.exec(statement).all())
                self._at = time.monotonic()
            return dict(self._counts)


ENDED = EndedCounts()


class _Report(NamedTuple):
    zone: str
    status: str
    drifted: int
    repaired: int
    unmanaged: int
    finished_at: datetime | None


def _latest(session: Session, statuses: Sequence[ReconcileStatus]) -> Sequence[_Report]:
    """Per registered zone, its latest finished report in ``statuses``: the counts only, never
    the list of differences a report holds."""
    rank = (
        func.row_number()
        .over(
            partition_by=col(Reconciliation.zone_id),
            order_by=(col(Reconciliation.finished_at).desc(), col(Reconciliation.id).desc()),
        )
        .label("rank")
    )
    ranked = (
        select(col(Reconciliation.id), rank)
        .where(col(Reconciliation.zone_id).is_not(None), col(Reconciliation.status).in_(statuses))
        .subquery()
    )
    first = select(ranked.c.id).where(ranked.c.rank == 1)
    reports = sa.select(  # six columns: more than sqlmodel's select() is typed for
        col(Reconciliation.zone),
        col(Reconciliation.status),
        col(Reconciliation.drifted),
        col(Reconciliation.repaired),
        col(Reconciliation.unmanaged),
        col(Reconciliation.finished_at),
    )
    rows = session.connection().execute(
        reports.where(col(Reconciliation.id).in_(first)).order_by(col(Reconciliation.zone))
    )
    return [_Report(*row) for row in rows]


def _gauge(lines: list[str], name: str, help_text: str, samples: Iterable[tuple[str, float]]) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f'{name}{{zone="{_label(zone)}"}} {value}' for zone, value in samples]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _seconds(at: datetime | None) -> float:
    return at.timestamp() if at is not None else 0.0
