"""Retention: what the tracker and reconciliation keep, and for how long.

Nothing grows without bound. Each recovery pass (service/operations/recovery.py) deletes:

- requests ended more than ``request_retention_days`` ago, with their steps and changes;
- reconciliation reports finished more than ``reconciliation_retention_days`` ago, except the
  latest of each zone that read it (and its latest error, while it has no later one), which
  /metrics and the zone's page show;
- console sessions past their expiry (service/console/sessions.py refuses them already).

In bounded batches: each statement deletes at most ``retention_batch`` requests (or reports),
oldest first, in a transaction of its own, and a pass runs at most ``MAX_BATCHES`` of each, so
a backlog is worked off over passes without long transactions or locks. A request being
pruned is skipped by nobody else: an ended request is only read. The RRsets themselves are
the desired state and are never pruned; an RRset's ``last_request_id`` may name a request
pruned since (its page then answers 404).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, TextClause, text
from sqlmodel import Session

from service.core.settings import Settings

logger = logging.getLogger(__name__)

MAX_BATCHES = 10

_REQUESTS = text(
    """
    WITH doomed AS (
        SELECT id FROM request
        WHERE status IN ('succeeded', 'failed', 'rejected') AND updated_at < :before
        ORDER BY updated_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ), steps AS (
        DELETE FROM request_event WHERE request_id IN (SELECT id FROM doomed)
    ), changes AS (
        DELETE FROM request_change WHERE request_id IN (SELECT id FROM doomed)
    )
    DELETE FROM request WHERE id IN (SELECT id FROM doomed)
    """
)
_REPORTS = text(
    """
    WITH doomed AS (
        SELECT old.id FROM zone_reconciliation AS old
        WHERE old.finished_at < :before AND old.status IN ('in_sync', 'drift', 'repaired', 'error')
          AND (old.zone_id IS NULL OR EXISTS (
              SELECT 1 FROM zone_reconciliation AS later
              WHERE later.zone_id = old.zone_id AND later.finished_at > old.finished_at
                AND (later.status IN ('in_sync', 'drift', 'repaired')
                     OR (old.status = 'error' AND later.status = 'error'))
          ))
        ORDER BY old.finished_at
        LIMIT :batch
    )
    DELETE FROM zone_reconciliation WHERE id IN (SELECT id FROM doomed)
    """
)
_SESSIONS = text(
    """
    DELETE FROM console_session WHERE id IN (
        SELECT id FROM console_session WHERE expires_at < :before ORDER BY expires_at LIMIT :batch
    )
    """
)


@dataclass
class Pruned:
    requests: int = 0
    reports: int = 0
    sessions: int = 0


def prune(engine: Engine, settings: Settings, now: datetime) -> Pruned:
    """Delete what is past its retention, at most ``MAX_BATCHES`` statements of each kind."""
    pruned = Pruned(
        requests=_in_batches(engine, _REQUESTS, now - timedelta(days=settings.request_retention_days), settings),
        reports=_in_batches(engine, _REPORTS, now - timedelta(days=settings.reconciliation_retention_days), settings),
        sessions=_in_batches(engine, _SESSIONS, now, settings),
    )
    if pruned.requests or pruned.reports or pruned.sessions:
        logger.info(
            "retention: %d ended requests, %d reconciliation reports and %d expired console sessions deleted",
            pruned.requests,
            pruned.reports,
            pruned.sessions,
            extra={
                "requests_pruned": pruned.requests,
                "reports_pruned": pruned.reports,
                "sessions_pruned": pruned.sessions,
            },
        )
    return pruned


def _in_batches(engine: Engine, statement: TextClause, before: datetime, settings: Settings) -> int:
    deleted = 0
    for _ in range(MAX_BATCHES):
        with Session(engine) as session:
            result = session.connection().execute(statement, {"before": before, "batch": settings.retention_batch})
            session.commit()
        count = int(result.rowcount or 0)
        deleted += count
        if count < settings.retention_batch:
            break
    return deleted
