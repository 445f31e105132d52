"""Many writes in one call: each its own request, sharing only the round trips.

``POST /api/v2/requests:batch`` (service/api/batch.py) takes up to HOSTMASTER_MAX_BATCH_WRITES
writes; the Kafka consumer sends a poll's events through it. Each write is what its single
call would be — its own tracker row, idempotency key, status, events and result, all or
nothing for that write, never for the batch:

1. each write's body parsed (a bad one is still tracked, then rejected, as a single call is);
2. which of the writes' idempotency keys this client used before: one query;
3. the writes are taken in order, consecutive new ones as a group: their tracker rows and
   received steps in ONE autocommitted statement, then ONE transaction in which each is
   planned and written inside a SAVEPOINT of its own — a rejected write rolls back to it and
   is recorded rejected, the next goes on, and each reads what the ones before it wrote
   (service/planning/desired.py reads rows afresh) — and ONE commit; then each queued write's
   message is published;
4. a write whose key was used before, or whose request id or key an earlier write of the
   batch carries, ends the group: the group is committed, then that write goes through the
   single path (service/requests/provisioning.py), which replays, refuses or accepts it as it would
   alone, and the next group starts after it.

A fault of ours in one write (a value PostgreSQL cannot store included) is rolled back to its
savepoint and the request ends failed, as its single call's would; only the database going
away fails the group as a whole (its requests are ended failed, best effort, and the call
answers 503). A write whose id or key another call took between step 2 and its opening is
answered by the single path after its group. The group holds the row locks of the RRsets it
writes until its commit, in the order of its writes (a worker that needs one of them waits,
or PostgreSQL breaks a deadlock by refusing one side: the write answers 409
concurrent_change, to send again, or the worker's pass retries).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError
from sqlmodel import Session, col, select

from db.models import Request, RequestStatus, Zone
from service.core.context import bound_request_id
from service.core.dispatch import Dispatcher
from service.core.errors import HostmasterError, InvalidRequest, RequestRejected, Violation
from service.registry import quotas
from service.registry.clients import Principal
from service.requests import provisioning, tracker
from service.requests.tracker import KafkaOrigin

logger = logging.getLogger(__name__)

INTERNAL = HostmasterError(
    "Hostmaster failed while validating the request; quote the request id to support", code="internal"
)
UNSTORABLE = InvalidRequest(
    [Violation("body", "a value cannot be stored (out of range or not representable)")],
    detail="a value cannot be stored (out of range or not representable)",
)
UNSTORABLE.code = "unstorable_value"
_FAULTS = (INTERNAL, UNSTORABLE)  # answers of writes that end failed (internal), as their single call's would


@dataclass(frozen=True)
class Write:
    """One write of a batch, as its single call would carry it."""

    request_id: uuid.UUID
    operation: str
    parser: provisioning.Parser
    payload: Any  # the body, parsed
    target: dict[str, str] | None = None
    idempotency_key: str | None = None
    origin: KafkaOrigin | None = None


@dataclass(frozen=True)
class Answer:
    """What the write's single call would have answered: its outcome, or the error it raised."""

    request_id: uuid.UUID  # the write's (its problem body names it, as a single call's does)
    outcome: provisioning.Outcome | None = None
    error: HostmasterError | None = None


@dataclass
class _Pending:
    write: Write
    stored: dict[str, Any]
    payload_hash: str | None
    asked: provisioning.ChangeRequest | None
    early_error: RequestRejected | None


def submit_many(
    *,
    engine: Engine,
    dispatcher: Dispatcher,
    writes: Sequence[Write],
    principal: Principal,
    limits: provisioning.Limits,
) -> list[Answer]:
    """Accept each of ``writes`` as its single call would, in order; the answers, in order.

    Consecutive new writes are accepted together (a group: one opening statement, one
    transaction). A write whose idempotency key was used before, or whose request id or key
    an earlier write of the batch carries, goes through the single path in its place: the
    group before it is committed first, so it sees them.
    """
    answers: dict[int, Answer] = {}
    used = _used_keys(engine, principal.name, writes)
    seen_ids: set[uuid.UUID] = set()
    group: dict[int, _Pending] = {}
    for index, write in enumerate(writes):
        key = write.idempotency_key
        if write.request_id in seen_ids or (key is not None and key in used):
            answers.update(_accept_group(engine, dispatcher, group, principal, limits))
            group = {}
            answers[index] = _alone(engine, dispatcher, write, principal, limits)
        else:
            group[index] = _parsed(write, limits.max_changes)
        seen_ids.add(write.request_id)
        if key is not None:
            used.add(key)
    answers.update(_accept_group(engine, dispatcher, group, principal, limits))
    return [answers[index] for index in range(len(writes))]


def _accept_group(
    engine: Engine,
    dispatcher: Dispatcher,
    group: dict[int, _Pending],
    principal: Principal,
    limits: provisioning.Limits,
) -> dict[int, Answer]:
    """Open, plan and commit the group's writes together, then queue them."""
    if not group:
        return {}
    answers: dict[int, Answer] = {}
    openings = [
        tracker.Opening(
            item.write.request_id,
            item.write.operation,
            item.stored,
            client=principal.name,
            idempotency_key=item.write.idempotency_key,
            payload_hash=item.payload_hash,
            origin=item.write.origin,
        )
        for item in group.values()
    ]
    opened = tracker.open_requests(engine, openings, provisioning.COMPONENT)
    raced = [index for index, item in group.items() if item.write.request_id not in opened]
    planning = {index: item for index, item in group.items() if index not in raced}
    queued: list[uuid.UUID] = []
    faulty: list[int] = []
    try:
        with Session(engine) as session:
            registry = list(session.exec(select(Zone)).all()) if planning else []
            tally = quotas.Tally()  # the client's RRsets, counted once for the whole group
            for index, item in planning.items():
                request = opened[item.write.request_id]
                with bound_request_id(str(request.id)):
                    answer = _plan_one(session, item, request, principal, limits.max_values, registry, tally)
                if any(answer.error is fault for fault in _FAULTS):
                    faulty.append(index)
                answers[index] = answer
                if answer.outcome is not None and request.status == RequestStatus.queued:
                    queued.append(request.id)
            session.commit()
    except DBAPIError:
        for item in planning.values():  # nothing of the group was committed: none stays received
            provisioning.fail_unexpectedly(engine, item.write.request_id)
        raise
    for index in faulty:
        provisioning.fail_unexpectedly(engine, group[index].write.request_id)
    for request_id in queued:
        with bound_request_id(str(request_id)):
            provisioning.enqueue(engine, dispatcher, request_id)
    for index in raced:  # its id or key was taken by another call meanwhile: the single path says which
        answers[index] = _alone(engine, dispatcher, group[index].write, principal, limits)
    return answers


def _parsed(write: Write, max_changes: int) -> _Pending:
    asked, early_error = None, None
    try:
        asked = provisioning.parse_write(write.parser, write.payload, max_changes)
        if asked.dry_run:
            raise InvalidRequest([Violation("dry_run", "a batch applies its writes; plan one with its own call")])
    except RequestRejected as exc:
        early_error = exc
    stored = provisioning.storable_payload(write.payload, None)
    if write.target:
        stored = {**stored, "target": write.target}
    payload_hash = provisioning.hash_of(write.operation, stored) if write.idempotency_key else None
    return _Pending(write, stored, payload_hash, asked, early_error)


def _used_keys(engine: Engine, client: str, writes: Sequence[Write]) -> set[str]:
    """The idempotency keys of ``writes`` this client used before the batch (one query)."""
    keys = {write.idempotency_key for write in writes if write.idempotency_key}
    if not keys:
        return set()
    with Session(engine) as session:
        found = session.exec(
            select(Request.idempotency_key).where(
                Request.client == client, col(Request.idempotency_key).in_(sorted(keys))
            )
        ).all()
    return {key for key in found if key is not None}


def _plan_one(
    session: Session,
    item: _Pending,
    request: Request,
    principal: Principal,
    max_values: int,
    registry: Sequence[Zone],
    tally: quotas.Tally,
) -> Answer:
    """Plan and write one write inside a savepoint of the group's transaction. A fault of ours
    (an error that is not the client's) is answered and rolled back to the savepoint; only the
    database going away fails the group (DBAPIError with the connection lost). A write rolled
    back takes back what it added to ``tally``."""
    savepoint = session.begin_nested()
    counted = tally.rrsets
    try:
        if item.early_error is not None:
            raise item.early_error
        assert item.asked is not None
        items = provisioning.plan_write(session, item.asked, principal, max_values, registry)
        planned = [plan_item.public() for plan_item in items]
        provisioning.write_plan(session, request.id, items, principal, tally)
        provisioning.record_acceptance(session, request, items)
    except RequestRejected as exc:
        tally.rrsets = counted
        savepoint.rollback()
        provisioning.record_rejection(session, request.id, exc, item.stored)
        return Answer(request.id, error=exc)
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        tally.rrsets = counted
        savepoint.rollback()
        logger.warning("request %s: the database refused a value (%s)", request.id, type(exc.orig).__name__)
        return Answer(request.id, error=UNSTORABLE if isinstance(exc, DataError) else INTERNAL)
    except Exception:
        tally.rrsets = counted
        savepoint.rollback()
        logger.exception("request %s failed while it was planned", request.id)
        return Answer(request.id, error=INTERNAL)
    savepoint.commit()
    return Answer(request.id, outcome=provisioning.Outcome(request, planned))


def _alone(
    engine: Engine,
    dispatcher: Dispatcher,
    write: Write,
    principal: Principal,
    limits: provisioning.Limits,
) -> Answer:
    """The write through the single path (a replayed key, a race): its outcome or its error."""
    body = json.dumps(write.payload).encode()
    with bound_request_id(str(write.request_id)):
        try:
            outcome = provisioning.submit(
                engine=engine,
                dispatcher=dispatcher,
                request_id=write.request_id,
                body=body,
                parser=write.parser,
                operation=write.operation,
                limits=limits,
                target=write.target,
                principal=principal,
                idempotency_key=write.idempotency_key,
                origin=write.origin,
            )
        except HostmasterError as exc:
            return Answer(write.request_id, error=exc)
    return Answer(write.request_id, outcome=outcome)
