"""Metrics in the Prometheus text format (version 0.0.4), read from the database at each scrape.

Every value is a gauge computed from the tables, so every API process answers alike and
nothing is lost when one restarts. Per zone, from its latest finished reconciliation:

- ``hostmaster_zone_drift_rrsets``: RRsets still missing, different or not deleted after it;
- ``hostmaster_zone_unmanaged_rrsets``: RRsets served that Hostmaster does not manage;
- ``hostmaster_zone_reconciled_timestamp_seconds``: when it finished (Unix time);
- ``hostmaster_zone_reconcile_failed``: 1 when the latest run could not read the zone.

The first three come from the latest run that could read the zone, so an alert on drift
holds while the primary is away; alert on the timestamp's age for reconciliation that stopped.
``hostmaster_requests``: requests by status (every status, 0 included).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlmodel import Session, col, func, select

from db.models import ReconcileStatus, Reconciliation, Request, RequestStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READ = (ReconcileStatus.in_sync, ReconcileStatus.drift, ReconcileStatus.repaired)


def exposition(session: Session) -> str:
    read = _latest(session, READ)
    finished = _latest(session, (*READ, ReconcileStatus.error))
    requests = dict(session.exec(select(Request.status, func.count()).group_by(col(Request.status))).all())
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


def _latest(session: Session, statuses: Sequence[ReconcileStatus]) -> Sequence[Reconciliation]:
    """Per registered zone, its latest finished report in ``statuses``."""
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
    return session.exec(
        select(Reconciliation).where(col(Reconciliation.id).in_(first)).order_by(col(Reconciliation.zone))
    ).all()


def _gauge(lines: list[str], name: str, help_text: str, samples: Iterable[tuple[str, float]]) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f'{name}{{zone="{_label(zone)}"}} {value}' for zone, value in samples]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _seconds(at: datetime | None) -> float:
    return at.timestamp() if at is not None else 0.0
