"""Claiming a pass: the request of a message, and the requests of its zone that wait.

A worker that takes the message of request R applies, with R, up to
HOSTMASTER_COALESCE_MAX_REQUESTS - 1 other requests of R's zone that nobody is applying:
``queued`` ones, and ``retrying`` ones whose shortest backoff has passed, oldest first.

Who applies a request is decided by its row lock: the pass takes the rows with
``FOR UPDATE SKIP LOCKED`` and holds them in one transaction until it has recorded every
outcome, so a request another pass holds is skipped, and a worker that dies lets them all go
at once (PostgreSQL rolls the transaction back when the connection drops): nothing of a dead
pass is recorded, each request is as it was, and its own message (still queued, or
redelivered) applies it. No pass sends messages for the requests it claims: each keeps its
own, which later finds it ended (one indexed read) or, when the pass could not finish it,
applies it as its own attempt.

One pass of a zone claims at a time: before its claim, a pass takes the zone's turn (an
advisory lock held until it commits), so the messages of requests queued together — a
group commit's, a batch's — do not split those requests between passes that race for them
(SKIP LOCKED): the first takes them all, the others wait their turn and find their requests
ended (measured: passes held 20 others on average when requests trickled in, 7-8 when they
came in groups, before the turn). A message whose request has ended answers at once,
without a turn. A request of several zones (zone_id NULL) claims no others and takes none.

R's message may find R held by another pass: it waits for that pass to end (the row lock,
within the connection's lock timeout) and then finds R ended, or released to it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from db.models import RequestStatus
from service.core.errors import NotFound

logger = logging.getLogger(__name__)

LOCK_NOT_AVAILABLE = "55P03"

_CLAIM = text(
    """
    WITH me AS (
        SELECT id, status, zone_id, source, announced_at FROM request WHERE id = CAST(:id AS uuid)
    ), leader AS (
        SELECT id, client, attempts, source FROM request
        WHERE id = CAST(:id AS uuid) AND status IN ('queued', 'in_progress', 'retrying')
        FOR UPDATE SKIP LOCKED
    ), others AS (
        SELECT id, client, attempts, source FROM request
        WHERE zone_id = (SELECT zone_id FROM me) AND EXISTS (SELECT 1 FROM leader)
          AND status IN ('queued', 'retrying') AND id <> CAST(:id AS uuid)
          AND (status = 'queued' OR updated_at < now() - make_interval(
                secs => least(:min_backoff_ms * power(2, greatest(attempts - 1, 0)), :max_backoff_ms / 2.0) / 1000.0))
        ORDER BY created_at
        LIMIT :more
        FOR UPDATE SKIP LOCKED
    )
    SELECT 0 AS role, id, status, source, announced_at IS NOT NULL AS announced, NULL AS client, 0 AS attempts FROM me
    UNION ALL SELECT 1, id, NULL, source, false, client, attempts FROM leader
    UNION ALL SELECT 2, id, NULL, source, false, client, attempts FROM others
    """
)
ZONE_TURNS = 18509  # the advisory lock space of the zones' turns ("HM")
_TURN = text(
    """
    SELECT status, source, announced_at IS NOT NULL AS announced,
           CASE WHEN status IN ('queued', 'in_progress', 'retrying') AND zone_id IS NOT NULL
                THEN pg_advisory_xact_lock(:space, zone_id) END IS NULL AS turn  -- selected for its lock
    FROM request WHERE id = CAST(:id AS uuid)
    """
)
_WAIT = text("SELECT status, source, announced_at IS NOT NULL FROM request WHERE id = CAST(:id AS uuid) FOR UPDATE")


@dataclass(frozen=True)
class Member:
    """A request in a pass: its attempt, and whether the message being processed is its own."""

    request_id: uuid.UUID
    client: str | None
    attempt: int
    source: str
    leader: bool


@dataclass(frozen=True)
class Claimed:
    """The requests of one pass, the message's own first; their rows are locked until it commits."""

    members: list[Member]

    @property
    def leader(self) -> Member:
        return self.members[0]

    @property
    def request_ids(self) -> list[uuid.UUID]:
        return [member.request_id for member in self.members]


@dataclass(frozen=True)
class Ended:
    """Nothing for the message to apply: its request has ended (``unannounced``: its Kafka result is
    still to publish), or is in no status a message applies."""

    status: str
    unannounced: bool
    kafka: bool = False


class Busy(Exception):
    """Another pass held the request longer than the lock timeout: look again later."""


def claim(
    session: Session,
    request_id: uuid.UUID,
    *,
    attempt: int,
    max_requests: int,
    min_backoff_ms: int,
    max_backoff_ms: int,
) -> Claimed | Ended:
    """Take ``request_id`` and the requests that wait for its zone (in the session's transaction).

    Raises NotFound for an unknown request, Busy when another pass holds it too long.
    """
    parameters = {
        "id": str(request_id),
        "more": max(max_requests - 1, 0),
        "min_backoff_ms": min_backoff_ms,
        "max_backoff_ms": max_backoff_ms,
    }
    try:  # the zone's turn; its status as it was before the wait (the claim reads it afresh)
        turn = session.execute(_TURN, {"id": str(request_id), "space": ZONE_TURNS}).one_or_none()
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) == LOCK_NOT_AVAILABLE:
            raise Busy(f"the zone of request {request_id} is held by another worker's pass") from exc
        raise
    if turn is None:
        raise NotFound(f"no request has the id {request_id}", code="request_not_found")
    if RequestStatus(turn.status).terminal:
        return Ended(turn.status, turn.source == "kafka" and not turn.announced, turn.source == "kafka")
    rows = session.execute(_CLAIM, parameters).all()
    me = next((row for row in rows if row.role == 0), None)
    if me is None:
        raise NotFound(f"no request has the id {request_id}", code="request_not_found")
    if RequestStatus(me.status).terminal:
        return Ended(me.status, me.source == "kafka" and not me.announced, me.source == "kafka")
    if not any(row.role == 1 for row in rows):
        ended = _wait(session, request_id)  # another pass holds it: its outcome decides
        if ended is not None:
            return ended
        rows = session.execute(_CLAIM, parameters).all()  # it is ours now; take the others again
        if not any(row.role == 1 for row in rows):
            logger.warning("request %s is %s: not a status a message applies", request_id, me.status)
            return Ended(me.status, unannounced=False)
    members = [
        Member(row.id, row.client, attempt if row.role == 1 else row.attempts + 1, row.source, row.role == 1)
        for row in sorted((row for row in rows if row.role > 0), key=lambda row: row.role)
    ]
    if len(members) > 1:
        logger.info("request %s applied with %d others of its zone", request_id, len(members) - 1)
    return Claimed(members)


def _wait(session: Session, request_id: uuid.UUID) -> Ended | None:
    try:
        status, source, announced = session.execute(_WAIT, {"id": str(request_id)}).one()
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) == LOCK_NOT_AVAILABLE:
            raise Busy(f"request {request_id} is held by another worker's pass") from exc
        raise
    if RequestStatus(status).terminal:
        return Ended(status, source == "kafka" and not announced, source == "kafka")
    return None
