"""Many writes in one call: each its own request, sharing only the round trips.

``POST /api/v2/requests:batch`` (service/api/batch.py) takes up to HOSTMASTER_MAX_BATCH_WRITES
writes; the Kafka consumer sends a poll's events through it. Each write is what its single
call would be — its own tracker row, idempotency key, status, events and result, all or
nothing for that write, never for the batch:

1. each write's body parsed (a bad one is still tracked, then rejected, as a single call is);
2. the writes whose idempotency key was used before: one query tells which, and each of
   those is answered as its single call would be (service/provisioning.py);
3. the others' tracker rows and received steps: ONE autocommitted statement;
4. ONE transaction, each write planned and written inside a SAVEPOINT of its own, in the
   order given — a rejected write rolls back to it and is recorded rejected, the next goes
   on, and each sees what the ones before it wrote; ONE commit;
5. each queued write's message published.

A write that finds its request id or key taken by a race at step 3, or that hits a fault of
ours, is handed to the single path, which says why.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from db.models import Request, RequestStatus, Zone
from service import changes, provisioning, tracker
from service.clients import Principal
from service.context import bound_request_id
from service.dispatch import Dispatcher
from service.errors import HostmasterError, InvalidRequest, RequestRejected, Violation
from service.tracker import KafkaOrigin

logger = logging.getLogger(__name__)

INTERNAL = HostmasterError(
    "Hostmaster failed while validating the request; quote the request id to support", code="internal"
)


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
    max_changes: int,
    max_values: int = changes.MAX_VALUES,
    key_window: provisioning.KeyWindow,
) -> list[Answer]:
    """Accept each of ``writes`` as its single call would; the answers, in order."""
    answers: dict[int, Answer] = {}
    pending: dict[int, _Pending] = {}
    for index, write in enumerate(writes):
        pending[index] = _parsed(write, max_changes)
    for index in _replays(engine, principal.name, pending):
        write = pending.pop(index).write
        answers[index] = _alone(engine, dispatcher, write, principal, max_changes, max_values, key_window)

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
        for item in pending.values()
    ]
    opened = tracker.open_requests(engine, openings, provisioning.COMPONENT)
    for index in [index for index, item in pending.items() if item.write.request_id not in opened]:
        write = pending.pop(index).write  # its id or key was taken meanwhile: the single path says which
        answers[index] = _alone(engine, dispatcher, write, principal, max_changes, max_values, key_window)

    queued: list[uuid.UUID] = []
    faulty: list[int] = []
    with Session(engine) as session:
        registry = list(session.exec(select(Zone)).all()) if pending else []
        for index, item in pending.items():
            request = opened[item.write.request_id]
            with bound_request_id(str(request.id)):
                answer = _plan_one(session, item, request, principal, max_values, registry)
            if answer is None:
                faulty.append(index)
                continue
            answers[index] = answer
            if answer.outcome is not None and request.status == RequestStatus.queued:
                queued.append(request.id)
        session.commit()
    for index in faulty:
        request_id = pending[index].write.request_id
        provisioning.fail_unexpectedly(engine, request_id)
        answers[index] = Answer(request_id, error=INTERNAL)
    for request_id in queued:
        with bound_request_id(str(request_id)):
            provisioning.enqueue(engine, dispatcher, request_id)
    return [answers[index] for index in range(len(writes))]


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


def _replays(engine: Engine, client: str, pending: dict[int, _Pending]) -> list[int]:
    """The writes whose idempotency key this client used before (one query)."""
    keys = {item.write.idempotency_key for item in pending.values() if item.write.idempotency_key}
    if not keys:
        return []
    with Session(engine) as session:
        used = set(
            session.exec(
                select(Request.idempotency_key).where(
                    Request.client == client, col(Request.idempotency_key).in_(sorted(keys))
                )
            ).all()
        )
    return [index for index, item in pending.items() if item.write.idempotency_key in used]


def _plan_one(
    session: Session,
    item: _Pending,
    request: Request,
    principal: Principal,
    max_values: int,
    registry: Sequence[Zone],
) -> Answer | None:
    """Plan and write one write inside a savepoint of the batch's transaction; None on a fault of ours."""
    savepoint = session.begin_nested()
    try:
        if item.early_error is not None:
            raise item.early_error
        assert item.asked is not None
        items = provisioning.plan_write(session, item.asked, principal, max_values, registry)
        planned = [plan_item.public() for plan_item in items]
        changes.commit(session, request.id, items)
        provisioning.record_acceptance(session, request, items)
    except RequestRejected as exc:
        savepoint.rollback()
        provisioning.record_rejection(session, request.id, exc)
        return Answer(request.id, error=exc)
    except DBAPIError:
        raise  # the database itself: the batch fails as a whole (its requests stay received; see recovery)
    except Exception:
        savepoint.rollback()
        logger.exception("request %s failed while it was planned", request.id)
        return None
    savepoint.commit()
    return Answer(request.id, outcome=provisioning.Outcome(request, planned))


def _alone(
    engine: Engine,
    dispatcher: Dispatcher,
    write: Write,
    principal: Principal,
    max_changes: int,
    max_values: int,
    key_window: provisioning.KeyWindow,
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
                max_changes=max_changes,
                max_values=max_values,
                target=write.target,
                principal=principal,
                idempotency_key=write.idempotency_key,
                key_window=key_window,
                origin=write.origin,
            )
        except HostmasterError as exc:
            return Answer(write.request_id, error=exc)
    return Answer(write.request_id, outcome=outcome)
