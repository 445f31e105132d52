"""The recovery job: every request reaches an end, and none waits for a message that was lost.

One pass:
- a request still ``received`` ``abandon_after_s`` after it came (its API process died before
  planning) is failed as ``abandoned``: nothing was changed;
- a request ``queued`` longer than ``recovery_requeue_after_s`` is queued again: its message may
  never have reached RabbitMQ (broker down at that moment, process killed between the commit
  and the publish). So is one left ``in_progress`` past an attempt's time limit, or
  ``retrying`` past the longest backoff: its message was lost with a broker or a worker.
  A second message is harmless: the worker applies the current desired state;
- a request not ended ``request_deadline_s`` after it came is failed with reason ``timeout``;
- an Idempotency-Key older than ``idempotency_retention_h`` is released;
- what is past its retention is deleted, in bounded batches (service/operations/retention.py).

`hostmaster recover` runs one pass; `hostmaster run recovery` runs one every
``recovery_interval_s``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select, update

from db.models import ChangeStatus, Request, RequestChange, RequestStatus, RRset, RRsetStatus, Step, utcnow
from service.core.context import bound_request_id
from service.core.dispatch import Dispatcher
from service.core.settings import Settings
from service.operations import retention
from service.requests import provisioning, tracker

logger = logging.getLogger(__name__)

COMPONENT = "recovery"
OPEN = (RequestStatus.received, RequestStatus.queued, RequestStatus.in_progress, RequestStatus.retrying)


@dataclass
class Recovered:
    requeued: int = 0
    abandoned: int = 0
    timed_out: int = 0
    keys_released: int = 0
    pruned: retention.Pruned = field(default_factory=retention.Pruned)


def recover(engine: Engine, dispatcher: Dispatcher, settings: Settings, now: datetime | None = None) -> Recovered:
    now = now or utcnow()
    done = Recovered()
    deadline = now - timedelta(seconds=settings.request_deadline_s)
    quiet_for = _quiet_periods(settings)
    with Session(engine) as session:
        stale = session.exec(
            select(Request).where(
                col(Request.status).in_(OPEN), col(Request.updated_at) < now - min(quiet_for.values())
            )
        ).all()
        candidates = [(request.id, request.status, request.created_at, request.updated_at) for request in stale]
    for request_id, status, created_at, updated_at in candidates:
        with bound_request_id(str(request_id)):
            if created_at < deadline:
                done.timed_out += _end(
                    engine, request_id, "timeout", f"not ended {settings.request_deadline_s} s after it came"
                )
            elif status == RequestStatus.received:
                if now - created_at > timedelta(seconds=settings.abandon_after_s):
                    done.abandoned += _end(engine, request_id, "abandoned", "the API stopped before it was planned")
            elif now - updated_at > quiet_for[RequestStatus(status)]:
                done.requeued += _requeue(engine, dispatcher, request_id, RequestStatus(status))
    done.keys_released = release_idempotency_keys(engine, now - timedelta(hours=settings.idempotency_retention_h))
    done.pruned = retention.prune(engine, settings, now)
    if done.requeued or done.abandoned or done.timed_out:
        logger.info(
            "recovery: %d queued again, %d abandoned, %d timed out",
            done.requeued,
            done.abandoned,
            done.timed_out,
            extra={"requeued": done.requeued, "abandoned": done.abandoned, "timed_out": done.timed_out},
        )
    return done


def _quiet_periods(settings: Settings) -> dict[RequestStatus, timedelta]:
    """How long a request may sit in each open status, untouched, before its message counts as lost."""
    grace = settings.recovery_requeue_after_s
    return {
        RequestStatus.received: timedelta(seconds=min(grace, settings.abandon_after_s)),
        RequestStatus.queued: timedelta(seconds=grace),
        RequestStatus.in_progress: timedelta(seconds=settings.apply_time_limit_s + grace),
        RequestStatus.retrying: timedelta(seconds=settings.max_backoff_ms / 1000 + grace),
    }


def release_idempotency_keys(engine: Engine, before: datetime) -> int:
    """Forget the Idempotency-Keys of requests made before ``before``: the same key is then a new request."""
    with Session(engine) as session:
        released = session.exec(
            update(Request)
            .where(col(Request.idempotency_key).is_not(None), col(Request.created_at) < before)
            .values(idempotency_key=None)
        )
        session.commit()
    return int(released.rowcount or 0)


def _requeue(engine: Engine, dispatcher: Dispatcher, request_id: uuid.UUID, seen: RequestStatus) -> int:
    with Session(engine) as session:  # the step first, so that it comes before the worker's
        request = tracker.get_request(session, request_id, for_update=True)
        if request.status != seen:
            return 0  # it moved on since it was read
        request.updated_at = utcnow()  # not queued again before the next interval
        session.add(request)
        tracker.add_event(session, request.id, Step.requeued, COMPONENT, was=seen.value)
        session.commit()
    return 1 if provisioning.enqueue(engine, dispatcher, request_id, COMPONENT) else 0


def _end(engine: Engine, request_id: uuid.UUID, code: str, detail: str) -> int:
    """Fail a request that will not end by itself, and mark its RRsets' pending changes failed."""
    with Session(engine) as session:
        request = tracker.get_request(session, request_id, for_update=True)
        if RequestStatus(request.status).terminal:
            return 0
        pending = session.exec(
            select(RequestChange).where(
                RequestChange.request_id == request.id, RequestChange.status == ChangeStatus.pending
            )
        ).all()
        for change in pending:
            change.status, change.error_code, change.error_detail = ChangeStatus.failed, code, detail
            session.add(change)
            row = session.exec(
                select(RRset).where(
                    RRset.zone_id == change.zone_id, RRset.owner == change.owner, RRset.rtype == change.rtype
                )
            ).first()
            if row is not None:
                row.status = RRsetStatus.error
                session.add(row)
        tracker.move(
            session,
            request,
            RequestStatus.failed,
            Step.failed,
            COMPONENT,
            error_code=code,
            error_detail=detail,
            code=code,
            reason=detail,
        )
        request.idempotency_key = None if code == "abandoned" else request.idempotency_key
        session.commit()
    return 1
