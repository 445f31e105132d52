"""Applying requests: make each zone's primary serve the desired RRsets, prove it, record it.

A worker applies the request of its message together with the requests that wait for the
same zones (workers/coalesce.py claims them): per zone, the union of their pending changes
goes in as few UPDATEs as fit (workers/updates.py), and each request keeps its own events and
status. The worker applies the *current* desired state of each RRset, not a request's delta,
so a repeated or late message converges instead of undoing newer work, and an RRset several
requests changed is sent once. The RRset rows stay locked while their zone is updated and
verified, so two batches touching the same RRset take turns. Each UPDATE carries
prerequisites asserting what we last applied (unless the zone's drift policy is override): a
change made on the server behind our back fails with drift_detected instead of being
overwritten.

A transient failure of a zone fails the attempt of the requests with changes there: the
leader's message is retried by Dramatiq; every other one is set ``retrying`` and sent a
message of its own, after the same backoff. The other requests of the batch end as usual.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine
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
from service.errors import TransientDnsError
from service.secrets import SecretUnavailable, tsig_secret
from service.settings import Settings
from workers import attempts, coalesce, rfc2136, updates
from workers.attempts import COMPONENT
from workers.attempts import Attempt as Attempt  # re-exported: the actors and workers/reconcile.py say apply.Attempt
from workers.coalesce import Batch, Delivery, Skipped
from workers.updates import Failure, Key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requeue:
    """A request of a batch whose attempt failed transiently: it needs a message for its retry."""

    request_id: uuid.UUID
    client: str | None
    attempts: int  # so far: the message carries it as Dramatiq's ``retries``


Enqueue = Callable[[Requeue], None]


def apply_request(
    engine: Engine,
    settings: Settings,
    request_id: uuid.UUID,
    attempt: Attempt,
    *,
    enqueue: Enqueue,
    delivery: Delivery,
) -> Skipped | None:
    """Run one attempt, with the requests it claims; None when it applied, or why it did not.

    Raises TransientDnsError when the request's attempt should be retried (its failure is
    recorded), and any other exception after recording it as a failed attempt.
    """
    requeue: list[Requeue] = []
    error: TransientDnsError | None = None
    with engine.connect() as connection:
        ownership = coalesce.Ownership(connection)
        try:
            try:
                with Session(connection) as session:
                    claimed = coalesce.claim(
                        session,
                        ownership,
                        request_id,
                        attempt=attempt.number,
                        delivery=delivery,
                        max_requests=settings.coalesce_max_requests,
                        max_retries=settings.max_retries,
                    )
            except Exception as exc:
                ownership.release()
                attempts.record_unexpected_failure(engine, request_id, attempt, exc)
                raise
            if isinstance(claimed, Skipped):
                logger.info("request %s: nothing to do, %s", request_id, claimed.reason.meaning)
                return claimed
            try:
                error = _apply_batch(connection, settings, claimed, attempt, requeue)
            except BaseException as exc:  # TimeLimitExceeded too
                _abandon(engine, claimed, attempt, exc, requeue)
                raise
        finally:
            ownership.release()  # before any retry message: its delivery must find the request free
            for item in requeue:
                _enqueue(engine, enqueue, item)
    if error is not None:
        raise error
    return None


def _apply_batch(
    connection: Connection, settings: Settings, batch: Batch, attempt: Attempt, requeue: list[Requeue]
) -> TransientDnsError | None:
    """Apply every zone of the batch, then end each request; the leader's transient failure, if any."""
    failed_zones: dict[int, TransientDnsError] = {}
    for zone_id in batch.zone_ids:
        try:
            with Session(connection) as session:
                _apply_zone(session, settings, zone_id, batch)
        except TransientDnsError as exc:
            logger.warning("zone %d: %s", zone_id, exc.detail, extra={"code": exc.code, "batch": len(batch.members)})
            failed_zones[zone_id] = exc
    with Session(connection) as session:
        error = _conclude(session, batch, attempt, failed_zones, requeue)
        session.commit()
    return error


def _apply_zone(session: Session, settings: Settings, zone_id: int, batch: Batch) -> None:
    zone = session.get(Zone, zone_id)
    assert zone is not None
    changes = list(
        session.exec(
            select(RequestChange)
            .where(
                col(RequestChange.request_id).in_(batch.request_ids),
                RequestChange.zone_id == zone_id,
                RequestChange.status == ChangeStatus.pending,
            )
            .order_by(col(RequestChange.id))
        ).all()
    )
    if not changes:
        return
    requests_of: dict[Key, frozenset[uuid.UUID]] = {}
    for change in changes:
        key = (change.owner, change.rtype)
        requests_of[key] = requests_of.get(key, frozenset()) | {change.request_id}
    keys = list(requests_of)
    rows = lock_rrsets(session, zone_id, keys)
    server = rfc2136.Server(zone.primary_host, zone.primary_port, settings.dns_timeout_s)
    sent_before = _unconfirmed(session, zone_id, keys)
    wanted = {key: _wanted(key, rows.get(key), zone, sent_before[key]) for key in keys}

    messages = 0
    started = time.perf_counter()
    try:
        tsig = rfc2136.TsigKey(
            zone.tsig_key_name, zone.tsig_algorithm, tsig_secret(settings, zone.tsig_key_name).get_secret_value()
        )
    except SecretUnavailable as exc:
        failures = {key: Failure(exc.code, exc.detail) for key in keys}
    else:
        primary = updates.ZonePrimary(zone.name, tsig, server)
        sent = updates.send(primary, list(wanted.values()), requests_of.__getitem__)
        failures, messages = sent.failures, sent.messages
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)

    served = rfc2136.served_rrsets([key for key in keys if key not in failures], server)
    for key, rrset in served.items():
        item = wanted[key]
        if not rfc2136.matches(rrset, item.rtype, item.ttl, item.values):
            failures[key] = _not_applied(item, rrset)
    for change in changes:
        key = (change.owner, change.rtype)
        row = rows.get(key)
        failure = failures.get(key)
        if failure is None:
            superseded = row is not None and row.version > change.version
            change.status = ChangeStatus.superseded if superseded else ChangeStatus.succeeded
            session.add(change)
        else:
            attempts.fail_change(session, change, row, failure)
    for key in keys:
        if key not in failures and (row := rows.get(key)) is not None:
            settle_rrset(session, row, wanted[key])

    by_request: dict[uuid.UUID, list[RequestChange]] = {}
    for change in changes:
        by_request.setdefault(change.request_id, []).append(change)
    for member in batch.members:
        own = by_request.get(member.request_id)
        if not own:
            continue
        failed = sum(1 for change in own if change.status == ChangeStatus.failed)
        with coalesce.on_behalf_of(member):
            if messages:
                tracker.add_event(
                    session,
                    member.request_id,
                    Step.dns_sent,
                    COMPONENT,
                    zone=zone.name,
                    server=f"{server.host}:{server.port}",
                    messages=messages,
                    rrsets=len(own),
                    batch=len(by_request),
                    batch_rrsets=len(keys),
                    ms=elapsed_ms,
                )
            tracker.add_event(
                session,
                member.request_id,
                Step.dns_verified,
                COMPONENT,
                zone=zone.name,
                verified=len(own) - failed,
                failed=failed,
            )
    session.commit()


def _conclude(
    session: Session,
    batch: Batch,
    attempt: Attempt,
    failed_zones: dict[int, TransientDnsError],
    requeue: list[Requeue],
) -> TransientDnsError | None:
    """End each request of the batch, or record its failed attempt; the leader's failure, if transient."""
    requests = {
        request.id: request
        for request in session.exec(
            select(Request).where(col(Request.id).in_(batch.request_ids)).order_by(col(Request.id)).with_for_update()
        ).all()
    }
    changes: dict[uuid.UUID, list[RequestChange]] = {}
    for change in session.exec(
        select(RequestChange)
        .where(col(RequestChange.request_id).in_(batch.request_ids))
        .order_by(col(RequestChange.seq))
    ).all():
        changes.setdefault(change.request_id, []).append(change)
    leader_error = None
    for member in batch.members:
        request = requests[member.request_id]
        error = next((failed_zones[zone] for zone in sorted(member.zone_ids) if zone in failed_zones), None)
        with coalesce.on_behalf_of(member):
            if error is None:
                attempts.end(session, request, changes.get(member.request_id, []), member.attempt)
            elif member.led_by is None:
                attempts.attempt_failed(session, request, attempt, error.code, error.detail)
                leader_error = error
            else:
                attempts.retry_later(session, request, member, error.code, error.detail)
                requeue.append(Requeue(member.request_id, member.client, member.attempt))
    return leader_error


def _enqueue(engine: Engine, enqueue: Enqueue, item: Requeue) -> None:
    """Send the retry message; if the broker does not take it, the recovery job will (it stays retrying)."""
    try:
        enqueue(item)
    except Exception as exc:
        logger.warning("the retry of request %s could not be queued: %s", item.request_id, type(exc).__name__)
        try:
            with Session(engine) as session:
                tracker.add_event(
                    session, item.request_id, Step.enqueue_failed, COMPONENT, reason=f"{type(exc).__name__}"
                )
                session.commit()
        except Exception:
            logger.exception("could not record that the retry of request %s was not queued", item.request_id)


def _abandon(engine: Engine, batch: Batch, attempt: Attempt, exc: BaseException, requeue: list[Requeue]) -> None:
    """Best effort, after an error that is not DNS's: every request still in progress gets a failed
    attempt (the leader's retried by Dramatiq, the others on messages of their own)."""
    reason = f"{type(exc).__name__} in the worker"
    try:
        with Session(engine) as session:  # the batch's connection may be what broke
            requests = session.exec(
                select(Request)
                .where(col(Request.id).in_(batch.request_ids))
                .order_by(col(Request.id))
                .with_for_update()
            ).all()
            status = {request.id: request for request in requests}
            for member in batch.members:
                request = status[member.request_id]
                if request.status != RequestStatus.in_progress:
                    continue  # ended, or its failure is recorded already
                with coalesce.on_behalf_of(member):
                    if member.led_by is None:
                        attempts.attempt_failed(session, request, attempt, "internal", reason)
                    else:
                        attempts.retry_later(session, request, member, "internal", reason)
                        requeue.append(Requeue(member.request_id, member.client, member.attempt))
            session.commit()
    except Exception:
        requeue.clear()  # nothing recorded: still in progress, they go with the leader's next attempt
        logger.exception("could not record the failure of the batch of request %s", batch.leader.request_id)


def _wanted(key: Key, row: RRset | None, zone: Zone, sent: tuple[tuple[str, ...], ...]) -> rfc2136.RRsetChange:
    """The current desired state of the RRset ``key``, with what we last applied as prerequisite."""
    values = tuple(row.values) if row is not None else ()
    ttl = row.ttl if row is not None else zone.default_ttl
    applied: dict[str, Any] | None = row.applied if row is not None else None
    expected = None
    if zone.drift_policy == DriftPolicy.fail:
        expected = tuple(applied["values"]) if applied else ()
    return rfc2136.RRsetChange(key[0], key[1], ttl, values, expected, sent)


def _unconfirmed(session: Session, zone_id: int, keys: list[Key]) -> dict[Key, tuple[tuple[str, ...], ...]]:
    """Per RRset, the states its changes asked for since the last one that was seen to land.

    Any of them may be on the server: an UPDATE whose answer was lost (the primary or the
    worker died in the middle) still took effect there.
    """
    found: dict[Key, list[tuple[str, ...]]] = {key: [] for key in keys}
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


def settle_rrset(session: Session, row: RRset, item: rfc2136.RRsetChange) -> None:
    """``row``'s desired state ``item`` was proven served: record it as applied (a deleted one's row goes)."""
    if item.values:
        row.applied = {"ttl": item.ttl, "values": list(item.values)}
        row.status = RRsetStatus.active
        row.updated_at = utcnow()
        session.add(row)
    else:
        session.delete(row)  # deleted and proven gone


def lock_rrsets(session: Session, zone_id: int, keys: list[Key]) -> dict[Key, RRset]:
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
