"""Applying one request: make each zone's primary serve the desired RRsets, prove it, record it.

The worker applies the *current* desired state of each RRset the request changes, not the
request's delta, so a repeated or late message converges instead of undoing newer work.
The RRset rows stay locked while their zone is updated and verified, so two requests for
the same RRset take turns. Each UPDATE carries prerequisites asserting what we last applied
(unless the zone's drift policy is override): a change made on the server behind our back
fails with drift_detected instead of being overwritten.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select, tuple_

from db.models import (
    ChangeStatus,
    DriftPolicy,
    Request,
    RequestChange,
    RequestStatus,
    RRset,
    RRsetStatus,
    Step,
    Zone,
    utcnow,
)
from service import tracker
from service.errors import PermanentDnsError, TransientDnsError
from service.secrets import SecretUnavailable, tsig_secret
from service.settings import Settings
from workers import rfc2136

logger = logging.getLogger(__name__)

COMPONENT = "worker"


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first delivery
    final: bool  # no retry follows a transient failure of this attempt


@dataclass(frozen=True)
class Failure:
    code: str
    detail: str


def apply_request(engine: Engine, settings: Settings, request_id: uuid.UUID, attempt: Attempt) -> None:
    """Run one attempt. Raises TransientDnsError when the attempt should be retried."""
    with Session(engine) as session:
        request = tracker.get_request(session, request_id, for_update=True)
        if RequestStatus(request.status).terminal:
            logger.info("request already %s; nothing to do", request.status)
            return
        request.attempts = attempt.number
        tracker.set_status(session, request, RequestStatus.in_progress)
        tracker.add_event(session, request_id, Step.started, COMPONENT, attempt=attempt.number)
        session.commit()
        zone_ids = sorted(set(session.exec(_pending(request_id).with_only_columns(col(RequestChange.zone_id))).all()))

    try:
        for zone_id in zone_ids:
            _apply_zone(engine, settings, request_id, zone_id)
    except TransientDnsError as exc:
        with Session(engine) as session:
            request = tracker.get_request(session, request_id, for_update=True)
            _attempt_failed(session, request, attempt, exc.code, exc.detail)
        raise
    _finish(engine, request_id, attempt)


def _apply_zone(engine: Engine, settings: Settings, request_id: uuid.UUID, zone_id: int) -> None:
    with Session(engine) as session:
        zone = session.get(Zone, zone_id)
        assert zone is not None
        changes = list(session.exec(_pending(request_id).where(RequestChange.zone_id == zone_id)).all())
        keys = [(change.owner, change.rtype) for change in changes]
        rows = lock_rrsets(session, zone_id, keys)
        server = rfc2136.Server(zone.primary_host, zone.primary_port, settings.dns_timeout_s)
        sent = _unconfirmed(session, zone_id, keys)
        wanted = [_wanted(change, rows.get(key), zone, sent[key]) for change, key in zip(changes, keys, strict=True)]

        try:
            key = rfc2136.TsigKey(
                zone.tsig_key_name,
                zone.tsig_algorithm,
                tsig_secret(settings, zone.tsig_key_name).get_secret_value(),
            )
        except SecretUnavailable as exc:
            failures = {item.key: Failure(exc.code, exc.detail) for item in wanted}
        else:
            failures = _send(zone, wanted, key, server, request_id, session)

        served = rfc2136.served_rrsets([item.key for item in wanted if item.key not in failures], server)
        verified = 0
        for change, item in zip(changes, wanted, strict=True):
            row = rows.get(item.key)
            failure = failures.get(item.key)
            if failure is None and not rfc2136.matches(served[item.key], item.rtype, item.ttl, item.values):
                failure = _not_applied(item, served[item.key])
            if failure is None:
                verified += 1
                _settle(session, change, row, item, superseded=row is not None and row.version > change.version)
            else:
                _fail_change(session, change, row, failure)
        tracker.add_event(
            session,
            request_id,
            Step.dns_verified,
            COMPONENT,
            zone=zone.name,
            verified=verified,
            failed=len(changes) - verified,
        )
        session.commit()


def _send(
    zone: Zone,
    changes: list[rfc2136.RRsetChange],
    key: rfc2136.TsigKey,
    server: rfc2136.Server,
    request_id: uuid.UUID,
    session: Session,
) -> dict[tuple[str, str], Failure]:
    """Send the changes in as few UPDATEs as fit; return the RRsets that could not be applied."""
    failures: dict[tuple[str, str], Failure] = {}
    messages = 0
    started = time.perf_counter()
    for batch in rfc2136.batches(changes):
        try:
            messages += 1
            rfc2136.send_update(rfc2136.update_message(zone.name, batch, key), server)
        except PermanentDnsError as exc:
            if exc.code != "prerequisite_failed":
                failures.update({item.key: Failure(exc.code, exc.detail) for item in batch})
                continue
            drifted, landed, ours = classify_drift(batch, rfc2136.served_rrsets([item.key for item in batch], server))
            failures.update(drifted)
            rest = [
                replace(item, expected=ours[item.key]) if item.key in ours else item
                for item in batch
                if item.key not in drifted and item.key not in landed
            ]
            if rest:
                messages += 1
                try:
                    rfc2136.send_update(rfc2136.update_message(zone.name, rest, key), server)
                except PermanentDnsError as again:
                    failures.update({item.key: Failure(again.code, again.detail) for item in rest})
    tracker.add_event(
        session,
        request_id,
        Step.dns_sent,
        COMPONENT,
        zone=zone.name,
        server=f"{server.host}:{server.port}",
        messages=messages,
        rrsets=len(changes),
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return failures


def classify_drift(
    batch: list[rfc2136.RRsetChange], served: dict[tuple[str, str], Any]
) -> tuple[dict[tuple[str, str], Failure], set[tuple[str, str]], dict[tuple[str, str], tuple[str, ...]]]:
    """After a failed prerequisite: which RRsets drifted, which already hold what we want, and
    which hold a state Hostmaster sent earlier without seeing it land (with the values served,
    the prerequisite to send them again with).

    An RRset that already serves the desired values landed earlier (a lost answer, an attempt
    cut short): it is not drift and needs no resend. One that serves what an earlier, unanswered
    UPDATE of ours sent is ours too: it is sent again, expecting what it holds. One that serves
    none of these was changed behind our back.
    """
    drifted: dict[tuple[str, str], Failure] = {}
    landed: set[tuple[str, str]] = set()
    ours: dict[tuple[str, str], tuple[str, ...]] = {}
    for item in batch:
        found = served.get(item.key)
        if rfc2136.matches(found, item.rtype, item.ttl, item.values):
            landed.add(item.key)
            continue
        expected = item.expected or ()
        found_ttl = found.ttl if found is not None else 0
        if rfc2136.matches(found, item.rtype, found_ttl, expected):
            continue  # as we left it: this one's prerequisite held
        if any(rfc2136.matches(found, item.rtype, found_ttl, state) for state in item.sent):
            ours[item.key] = tuple(rdata.to_text() for rdata in found) if found is not None else ()
            continue
        shown = sorted(rdata.to_text() for rdata in found) if found is not None else []
        drifted[item.key] = Failure(
            "drift_detected",
            f"{item.owner} {item.rtype} was changed on the server outside Hostmaster: it serves "
            f"{shown or 'nothing'} where Hostmaster last applied {list(expected) or 'nothing'}; "
            "nothing was overwritten (set the zone's drift_policy to override to replace it)",
        )
    return drifted, landed, ours


def _wanted(
    change: RequestChange, row: RRset | None, zone: Zone, sent: tuple[tuple[str, ...], ...]
) -> rfc2136.RRsetChange:
    """The current desired state of the change's RRset, with what we last applied as prerequisite."""
    values = tuple(row.values) if row is not None else ()
    ttl = row.ttl if row is not None else zone.default_ttl
    applied: dict[str, Any] | None = row.applied if row is not None else None
    expected = None
    if zone.drift_policy == DriftPolicy.fail:
        expected = tuple(applied["values"]) if applied else ()
    return rfc2136.RRsetChange(change.owner, change.rtype, ttl, values, expected, sent)


def _unconfirmed(
    session: Session, zone_id: int, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[tuple[str, ...], ...]]:
    """Per RRset, the states its changes asked for since the last one that was seen to land.

    Any of them may be on the server: an UPDATE whose answer was lost (the primary or the
    worker died in the middle) still took effect there.
    """
    found: dict[tuple[str, str], list[tuple[str, ...]]] = {key: [] for key in keys}
    if not keys:
        return {}
    history = session.exec(
        select(RequestChange)
        .where(RequestChange.zone_id == zone_id, tuple_(col(RequestChange.owner), col(RequestChange.rtype)).in_(keys))
        .order_by(col(RequestChange.id))
    ).all()
    for change in history:
        states = found[(change.owner, change.rtype)]
        if change.status in (ChangeStatus.succeeded, ChangeStatus.superseded):
            states.clear()  # seen to land: what came before it is overwritten
        else:
            states.append(tuple(change.after["values"]) if change.after else ())
    return {key: tuple(states) for key, states in found.items()}


def _not_applied(item: rfc2136.RRsetChange, served: Any) -> Failure:
    shown = sorted(rdata.to_text() for rdata in served) if served is not None else []
    return Failure(
        "not_applied",
        f"the server answered NOERROR but serves {shown or 'nothing'} for {item.owner} {item.rtype}: it ignored "
        "the update (BIND does so for a CNAME beside other data)",
    )


def _settle(
    session: Session, change: RequestChange, row: RRset | None, item: rfc2136.RRsetChange, *, superseded: bool
) -> None:
    """The RRset serves its desired state: record it as applied (a deleted one's row goes)."""
    change.status = ChangeStatus.superseded if superseded else ChangeStatus.succeeded
    session.add(change)
    if row is not None:
        settle_rrset(session, row, item)


def settle_rrset(session: Session, row: RRset, item: rfc2136.RRsetChange) -> None:
    """``row``'s desired state ``item`` was proven served: record it as applied (a deleted one's row goes)."""
    if item.values:
        row.applied = {"ttl": item.ttl, "values": list(item.values)}
        row.status = RRsetStatus.active
        row.updated_at = utcnow()
        session.add(row)
    else:
        session.delete(row)  # deleted and proven gone


def _fail_change(session: Session, change: RequestChange, row: RRset | None, failure: Failure) -> None:
    change.status = ChangeStatus.failed
    change.error_code = failure.code
    change.error_detail = failure.detail
    session.add(change)
    if row is not None:
        row.status = RRsetStatus.error
        row.updated_at = utcnow()
        session.add(row)


def _finish(engine: Engine, request_id: uuid.UUID, attempt: Attempt) -> None:
    with Session(engine) as session:
        request = tracker.get_request(session, request_id, for_update=True)
        changes = list(session.exec(select(RequestChange).where(RequestChange.request_id == request_id)).all())
        failed = [change for change in changes if change.status == ChangeStatus.failed]  # superseded is done
        if not failed:
            tracker.set_status(session, request, RequestStatus.succeeded)
            request.error_code = request.error_detail = None
            tracker.add_event(session, request_id, Step.succeeded, COMPONENT, attempts=attempt.number)
            session.commit()
            return
        first = failed[0]
        detail = first.error_detail or first.error_code or "failed"
        if len(changes) > 1:
            detail = f"{len(failed)} of {len(changes)} changes failed; first {first.owner} {first.rtype}: {detail}"
        _fail(session, request, first.error_code or "failed", detail)


def _pending(request_id: uuid.UUID) -> Any:
    return (
        select(RequestChange)
        .where(RequestChange.request_id == request_id, RequestChange.status == ChangeStatus.pending)
        .order_by(col(RequestChange.seq))
    )


def lock_rrsets(session: Session, zone_id: int, keys: list[tuple[str, str]]) -> dict[tuple[str, str], RRset]:
    """The RRset rows of ``keys``, locked (in id order, so two workers never deadlock)."""
    if not keys:
        return {}
    statement = (
        select(RRset)
        .where(RRset.zone_id == zone_id, tuple_(col(RRset.owner), col(RRset.rtype)).in_(keys))
        .order_by(col(RRset.id))
        .with_for_update()
    )
    return {(row.owner, row.rtype): row for row in session.exec(statement).all()}


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
            _attempt_failed(session, request, attempt, "internal", reason)
    except Exception:
        logger.exception("could not record the failure of request %s in the tracker", request_id)


def _attempt_failed(session: Session, request: Request, attempt: Attempt, code: str, reason: str) -> None:
    """Record a failed attempt: retrying, or on the last attempt dead-lettered and failed."""
    if attempt.final:
        tracker.add_event(session, request.id, Step.dead_lettered, COMPONENT, code=code, reason=reason)
        for change in session.exec(_pending(request.id)).all():
            row = session.exec(
                select(RRset).where(
                    RRset.zone_id == change.zone_id, RRset.owner == change.owner, RRset.rtype == change.rtype
                )
            ).first()
            _fail_change(session, change, row, Failure("retries_exhausted", reason))
        _fail(session, request, "retries_exhausted", f"gave up after {attempt.number} attempts: {reason}")
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
    session.commit()


def _fail(session: Session, request: Request, code: str, detail: str) -> None:
    tracker.set_status(session, request, RequestStatus.failed, error_code=code, error_detail=detail)
    tracker.add_event(session, request.id, Step.failed, COMPONENT, code=code, reason=detail)
    session.commit()
