"""A request's attempts as the tracker records them: how one ends, fails, or waits for a retry.

Every function adds the events of one change of status to the caller's session; the caller
commits (with the changes of state they describe).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.models import ChangeStatus, Request, RequestChange, RequestStatus, RRset, RRsetStatus, Step, utcnow
from service import tracker
from workers.coalesce import Member
from workers.updates import Failure

logger = logging.getLogger(__name__)

COMPONENT = "worker"


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first delivery
    final: bool  # no retry follows a transient failure of this attempt


def end(session: Session, request: Request, changes: list[RequestChange], attempts: int) -> None:
    """The request's changes are settled: it succeeded, or failed naming its first failed change."""
    failures = [change for change in changes if change.status == ChangeStatus.failed]  # superseded is done
    if not failures:
        tracker.set_status(session, request, RequestStatus.succeeded)
        request.error_code = request.error_detail = None
        tracker.add_event(session, request.id, Step.succeeded, COMPONENT, attempts=attempts)
        return
    first = failures[0]
    detail = first.error_detail or first.error_code or "failed"
    if len(changes) > 1:
        detail = f"{len(failures)} of {len(changes)} changes failed; first {first.owner} {first.rtype}: {detail}"
    fail(session, request, first.error_code or "failed", detail)


def retry_later(session: Session, request: Request, member: Member, code: str, reason: str) -> None:
    """A request that rode in another's batch failed transiently: ``retrying``, on a message of its own."""
    tracker.set_status(session, request, RequestStatus.retrying, error_code=code, error_detail=reason)
    tracker.add_event(
        session,
        request.id,
        Step.retry_scheduled,
        COMPONENT,
        code=code,
        reason=reason,
        attempt=member.attempt,
        next_attempt=member.attempt + 1,
        led_by=str(member.led_by),
    )


def attempt_failed(session: Session, request: Request, attempt: Attempt, code: str, reason: str) -> None:
    """Record a failed attempt: retrying, or on the last attempt dead-lettered and failed (caller commits)."""
    if attempt.final:
        tracker.add_event(session, request.id, Step.dead_lettered, COMPONENT, code=code, reason=reason)
        for change in session.exec(_pending(request.id)).all():
            row = session.exec(
                select(RRset).where(
                    RRset.zone_id == change.zone_id, RRset.owner == change.owner, RRset.rtype == change.rtype
                )
            ).first()
            fail_change(session, change, row, Failure("retries_exhausted", reason))
        fail(session, request, "retries_exhausted", f"gave up after {attempt.number} attempts: {reason}")
        return
    tracker.set_status(session, request, RequestStatus.retrying, error_code=code, error_detail=reason)
    tracker.add_event(
        session,
        request.id,
        Step.retry_scheduled,
        COMPONENT,
        code=code,
        reason=reason,
        attempt=attempt.number,
        next_attempt=attempt.number + 1,
    )


def fail(session: Session, request: Request, code: str, detail: str) -> None:
    """The request ends ``failed`` with ``code`` and a sentence a person understands."""
    tracker.set_status(session, request, RequestStatus.failed, error_code=code, error_detail=detail)
    tracker.add_event(session, request.id, Step.failed, COMPONENT, code=code, reason=detail)


def record_unexpected_failure(engine: Engine, request_id: uuid.UUID, attempt: Attempt, exc: BaseException) -> None:
    """Best effort: say in the tracker that an attempt died of something other than DNS.

    The message is retried like a transient failure; on the last attempt the request is
    failed so that it does not stay in progress. If the database itself is what failed,
    this fails too and only the log line remains.
    """
    reason = f"{type(exc).__name__} in the worker"
    try:
        with Session(engine) as session:
            request = tracker.get_request(session, request_id, for_update=True)
            if RequestStatus(request.status).terminal:
                return
            attempt_failed(session, request, attempt, "internal", reason)
            session.commit()
    except Exception:
        logger.exception("could not record the failure of request %s in the tracker", request_id)


def fail_change(session: Session, change: RequestChange, row: RRset | None, failure: Failure) -> None:
    """The change failed; its RRset is marked ``error`` (the request says why)."""
    change.status = ChangeStatus.failed
    change.error_code = failure.code
    change.error_detail = failure.detail
    session.add(change)
    if row is not None:
        row.status = RRsetStatus.error
        row.updated_at = utcnow()
        session.add(row)


def _pending(request_id: uuid.UUID) -> Any:
    return (
        select(RequestChange)
        .where(RequestChange.request_id == request_id, RequestChange.status == ChangeStatus.pending)
        .order_by(col(RequestChange.seq))
    )
