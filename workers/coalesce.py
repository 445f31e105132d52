"""Claiming a batch: the request of a message, and the requests of the same zones that wait.

A worker that takes the message of request R applies, with R, the other requests that have
pending changes in R's zones and that nobody is applying: ``queued`` ones, oldest first, up to
HOSTMASTER_COALESCE_MAX_REQUESTS requests and ``MAX_BATCH_RRSETS`` pending changes (R's own
always go). When R itself was left ``in_progress`` by a worker that died, the ``in_progress``
requests nobody holds are taken too: the rest of that batch, whose messages were acknowledged.
Each request gets its own ``started`` event: its attempt, ``batch`` (how many requests share
it) and, for all but R, ``led_by`` R.

Who applies a request is decided by a PostgreSQL advisory lock on its id, taken at session level
on a connection the batch keeps until it has recorded every outcome: the lock outlives the
batch's commits and goes with the connection when the worker dies. A worker that gets the
message of a request another batch holds acknowledges it (``Skip.elsewhere``): that batch ends
the request, or on a transient failure sends it a message of its own for the retry. (A Kafka
request's result is published by its own message, so that one looks again a moment later.)

A request's attempts count across batches: its attempt in another's batch is ``attempts + 1``,
and the message for its retry carries ``retries = attempts``, so Dramatiq's count and ours
agree. A batch only takes requests whose attempt would not be their last: a last attempt is
always made by the request's own message, which Dramatiq dead-letters. A message older than
the retry a batch sent for its request is dropped (``Skip.superseded``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, and_, func, text
from sqlmodel import Session, col, select

from db.models import ChangeStatus, Request, RequestChange, RequestEvent, RequestStatus, Source, Step
from service import tracker
from service.context import bound_request_id, client_var
from service.errors import NotFound

logger = logging.getLogger(__name__)

COMPONENT = "worker"
# A batch stops taking requests past this many pending changes: its locks and its
# verification queries (one per RRset) stay short.
MAX_BATCH_RRSETS = 5_000
# A dead worker's connection, and so its locks, must not outlive it by long (the server's
# default is the system's, often two hours).
_KEEPALIVE = text(
    "SELECT set_config('tcp_keepalives_idle', '30', false), set_config('tcp_keepalives_interval', '10', false),"
    " set_config('tcp_keepalives_count', '3', false)"
)
_ENDED = [status.value for status in RequestStatus if status.terminal]


class Skip(StrEnum):
    """Why a message applies nothing."""

    ended = "ended"  # its request has ended
    elsewhere = "elsewhere"  # another worker's batch holds its request
    superseded = "superseded"  # a batch sent its request a newer message, for the retry

    @property
    def meaning(self) -> str:
        return {
            Skip.ended: "it has ended",
            Skip.elsewhere: "another worker's batch is applying it",
            Skip.superseded: "a newer message carries its retry",
        }[self]


@dataclass(frozen=True)
class Skipped:
    reason: Skip
    source: str  # the request's (api, kafka): a Kafka request's result is published by its own message
    announce: bool = False  # this message is the one to publish the ended request's result


@dataclass(frozen=True)
class Delivery:
    """The message being processed: its id, and when it was first sent (None: not known)."""

    message_id: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class Member:
    """A request in a batch: its attempt, and the request whose message leads it (None: its own)."""

    request_id: uuid.UUID
    client: str | None
    attempt: int
    led_by: uuid.UUID | None
    zone_ids: frozenset[int]


@dataclass
class Batch:
    members: list[Member]  # the leader first
    zone_ids: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.zone_ids = sorted(set().union(*(member.zone_ids for member in self.members)))

    @property
    def leader(self) -> Member:
        return self.members[0]

    @property
    def request_ids(self) -> list[uuid.UUID]:
        return [member.request_id for member in self.members]


@dataclass(frozen=True)
class Candidate:
    """A request that could join a batch, with how many changes it would bring."""

    request_id: uuid.UUID
    client: str | None
    attempts: int
    pending: int


class Ownership:
    """The advisory locks on request ids that one connection holds (at session level)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.held = False

    def take_one(self, session: Session, request_id: uuid.UUID) -> tuple[str, str]:
        """Lock the request of the message unless it has ended or another holds it (never waits); its
        status and source, as read in the same statement (one round trip for a message that applies nothing)."""
        row = session.execute(
            text(
                "SELECT status, source, CASE WHEN status = ANY(:ended) THEN false ELSE pg_try_advisory_lock(:key) END"
                " FROM request WHERE id = CAST(:id AS uuid)"
            ),
            {"ended": _ENDED, "key": lock_key(request_id), "id": str(request_id)},
        ).one_or_none()
        if row is None:
            raise NotFound(f"no request has the id {request_id}", code="request_not_found")
        status, source, locked = row
        if locked:
            session.execute(_KEEPALIVE)
            self.held = True
        return str(status), str(source)

    def take(self, session: Session, request_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Lock what nobody holds (never waits); the ids locked."""
        if not request_ids:
            return set()
        by_key = {lock_key(request_id): request_id for request_id in request_ids}
        taken = session.execute(
            text("SELECT key FROM unnest(CAST(:keys AS bigint[])) AS key WHERE pg_try_advisory_lock(key)"),
            {"keys": list(by_key)},
        ).scalars()
        locked = {by_key[key] for key in taken}
        if locked and not self.held:
            session.execute(_KEEPALIVE)
            self.held = True
        return locked

    def release(self) -> None:
        """Let every lock go; a connection that cannot say so is closed, which lets them go too."""
        if not self.held:
            return
        try:
            self.connection.rollback()
            self.connection.execute(text("SELECT pg_advisory_unlock_all()"))
            self.connection.commit()
        except Exception:
            logger.warning("the advisory locks could not be released; closing their connection", exc_info=True)
            self.connection.invalidate()
        self.held = False


def lock_key(request_id: uuid.UUID) -> int:
    """The advisory lock key of a request: 64 bits of its id (two random ids share one with odds of 2⁻⁶⁰)."""
    return int.from_bytes(request_id.bytes[:8], "big", signed=True)


def claim(
    session: Session,
    ownership: Ownership,
    request_id: uuid.UUID,
    *,
    attempt: int,
    delivery: Delivery,
    max_requests: int,
    max_retries: int,
) -> Batch | Skipped:
    """Take ``request_id`` and the requests that wait for its zones; mark each started (committed)."""
    status, source = ownership.take_one(session, request_id)
    if RequestStatus(status).terminal:
        return _ended(session, request_id, source, delivery)
    if not ownership.held:
        return Skipped(Skip.elsewhere, source)
    request = tracker.get_request(session, request_id, for_update=True)  # what its last holder committed
    if RequestStatus(request.status).terminal:
        return _ended(session, request_id, source, delivery)
    if superseded(request, retries=attempt - 1, sent_at=delivery.sent_at):
        return Skipped(Skip.superseded, source)
    zones = _pending_zones(session, [request_id]).get(request_id, frozenset())
    # A request found in progress was left so by a worker that died in a batch: that batch's other
    # requests, in progress too, are looked for as well (their messages were acknowledged).
    claimable = [RequestStatus.queued]
    if request.status == RequestStatus.in_progress:
        claimable.append(RequestStatus.in_progress)
    candidates = _candidates(session, request_id, zones, claimable, max_requests - 1, max_retries) if zones else []
    chosen = within_budget(candidates, MAX_BATCH_RRSETS - _pending_count(session, request_id))
    taken = ownership.take(session, [candidate.request_id for candidate in chosen])
    joining = [candidate for candidate in chosen if candidate.request_id in taken]
    zones_of = _pending_zones(session, [candidate.request_id for candidate in joining])
    batch = Batch(
        [
            Member(request_id, request.client, attempt, None, zones),
            *(
                Member(c.request_id, c.client, c.attempts + 1, request_id, zones_of.get(c.request_id, frozenset()))
                for c in joining
            ),
        ]
    )
    _start(session, batch, delivery.message_id)
    session.commit()
    return batch


def publishes(started: Mapping[str, object] | None, message_id: str | None) -> bool:
    """Whether a message that finds its Kafka request ended publishes the result, by the request's last
    ``started`` event: yes when another request's batch applied it (nothing of its own published it), or
    when this message applied it (redelivered or retried: its publish may not have happened); no when
    another message of its own did (a duplicate message, say: that one publishes)."""
    if started is None or "led_by" in started:
        return True
    return started.get("message") in (None, message_id)


def superseded(request: Request, *, retries: int, sent_at: datetime | None) -> bool:
    """True for a message a batch has overtaken: its request is ``retrying`` on a message the batch
    sent after this one was, and this one knows of fewer attempts. (A message the recovery job
    sends for a request whose retry was lost is newer than the request's last change, so it goes.)"""
    return (
        request.status == RequestStatus.retrying
        and retries < request.attempts
        and sent_at is not None
        and sent_at < request.updated_at
    )


def within_budget(candidates: Iterable[Candidate], budget: int) -> list[Candidate]:
    """The candidates, oldest first, whose changes fit in ``budget``; a larger one waits for its own batch."""
    chosen = []
    for candidate in candidates:
        if candidate.pending <= budget:
            chosen.append(candidate)
            budget -= candidate.pending
    return chosen


@contextmanager
def on_behalf_of(member: Member) -> Iterator[None]:
    """Tracker events and log lines written inside carry ``member``'s request id and client."""
    token = client_var.set(member.client)
    try:
        with bound_request_id(str(member.request_id)):
            yield
    finally:
        client_var.reset(token)


def _ended(session: Session, request_id: uuid.UUID, source: str, delivery: Delivery) -> Skipped:
    if source != Source.kafka:
        return Skipped(Skip.ended, source)
    statement = (
        select(RequestEvent.detail)
        .where(RequestEvent.request_id == request_id, RequestEvent.step == Step.started)
        .order_by(col(RequestEvent.id).desc())
        .limit(1)
    )
    return Skipped(Skip.ended, source, publishes(session.exec(statement).first(), delivery.message_id))


def _start(session: Session, batch: Batch, message_id: str | None) -> None:
    requests = {
        request.id: request
        for request in session.exec(select(Request).where(col(Request.id).in_(batch.request_ids))).all()
    }
    size = len(batch.members)
    for member in batch.members:
        request = requests[member.request_id]
        request.attempts = member.attempt
        tracker.set_status(session, request, RequestStatus.in_progress)
        detail: dict[str, object] = {"attempt": member.attempt, "batch": size}
        if member.led_by is not None:
            detail["led_by"] = str(member.led_by)
        elif message_id is not None:
            detail["message"] = message_id  # the message that applies it (see publishes)
        with on_behalf_of(member):
            tracker.add_event(session, member.request_id, Step.started, COMPONENT, **detail)


def _candidates(
    session: Session,
    leader: uuid.UUID,
    zone_ids: frozenset[int],
    statuses: Sequence[RequestStatus],
    limit: int,
    max_retries: int,
) -> list[Candidate]:
    """Requests in ``statuses`` with pending changes in ``zone_ids`` that no other claim is looking at,
    oldest first (their rows locked until the claim commits; the advisory lock says who applies them)."""
    if limit < 1:
        return []
    pending = and_(col(RequestChange.request_id) == col(Request.id), col(RequestChange.status) == ChangeStatus.pending)
    in_zones = select(RequestChange.id).where(pending, col(RequestChange.zone_id).in_(zone_ids)).exists()
    count = select(func.count(col(RequestChange.id))).where(pending).scalar_subquery()
    statement = (
        select(Request.id, Request.client, Request.attempts, count)
        .where(
            col(Request.status).in_(statuses),
            Request.id != leader,
            col(Request.attempts) < max_retries,  # its attempt here is not its last
            in_zones,
        )
        .order_by(col(Request.created_at))
        .limit(limit)
        .with_for_update(of=Request, skip_locked=True, key_share=True)  # FOR NO KEY UPDATE: events may be added
    )
    return [Candidate(*row) for row in session.exec(statement).all()]


def _pending_zones(session: Session, request_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, frozenset[int]]:
    if not request_ids:
        return {}
    rows = session.exec(
        select(RequestChange.request_id, RequestChange.zone_id)
        .where(col(RequestChange.request_id).in_(request_ids), RequestChange.status == ChangeStatus.pending)
        .distinct()
    ).all()
    found: dict[uuid.UUID, set[int]] = {}
    for request_id, zone_id in rows:
        if zone_id is not None:
            found.setdefault(request_id, set()).add(zone_id)
    return {request_id: frozenset(zones) for request_id, zones in found.items()}


def _pending_count(session: Session, request_id: uuid.UUID) -> int:
    statement = select(func.count(col(RequestChange.id))).where(
        RequestChange.request_id == request_id, RequestChange.status == ChangeStatus.pending
    )
    return int(session.exec(statement).one())
