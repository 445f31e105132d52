"""Applying requests: make each zone's primary serve the desired RRsets, prove it, record it.

A worker applies the request of its message together with the requests that wait for the same
zone (workers/claim.py), in one transaction that holds their rows: per zone, each RRset any of
them changes is sent once, in its *current* desired state (not a request's delta, so a repeated
or late message converges instead of undoing newer work), in as few UPDATEs as fit
(workers/updates.py); then every RRset is proven served (workers/verification.py) and every
row settled at once (workers/settle.py). Each request keeps its own steps (started, dns_sent,
dns_verified, succeeded or failed), status, error and attempt count.

The RRset rows stay locked from the read of their desired state to the commit, so two passes
touching one RRset take turns, and the later one sends the later state. Each UPDATE carries
prerequisites asserting what we last applied (unless the zone's drift policy is override): a
change made on the server behind our back fails with drift_detected instead of being overwritten.

A transient failure of a zone (timeout, SERVFAIL, unreachable) fails the attempt of the
message's own request (retrying, or failed on its last attempt; Dramatiq retries the message);
the other requests of the pass are released untouched, for their own messages.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select, tuple_

from db.models import (
    ChangeStatus,
    DriftPolicy,
    Request,
    RequestChange,
    RequestStatus,
    RRset,
    RRsetStatus,
    Source,
    Step,
    Zone,
    utcnow,
)
from service.core.errors import TransientDnsError
from service.core.secrets import SecretUnavailable, tsig_secret
from service.core.settings import Settings
from service.requests import tracker
from workers import batch, claim, history, outcomes, rfc2136, settle, updates, verification
from workers.batch import Attempt as Attempt  # re-exported: the actors and workers/reconcile.py say apply.Attempt
from workers.batch import Pass, Row, ZoneResult
from workers.updates import Failure, Key

logger = logging.getLogger(__name__)

COMPONENT = "worker"


def apply_request(engine: Engine, settings: Settings, request_id: uuid.UUID, attempt: Attempt) -> list[uuid.UUID]:
    """Run one attempt of ``request_id``, with the requests it claims.

    Returns the Kafka requests that ended here (or had ended unannounced), whose results are to
    be published. Raises TransientDnsError when the request's own attempt should be retried (its
    failure is recorded), claim.Busy when another pass holds it too long.
    """
    with Session(engine) as session:
        claimed = claim.claim(
            session,
            request_id,
            attempt=attempt.number,
            max_requests=settings.coalesce_max_requests,
            min_backoff_ms=settings.min_backoff_ms,
            max_backoff_ms=settings.max_backoff_ms,
        )
        if isinstance(claimed, claim.Ended):
            logger.info("request already %s; nothing to do", claimed.status)
            if claimed.kafka and not claimed.unannounced:
                logger.info("result of request %s already published", request_id)
            return [request_id] if claimed.unannounced else []
        work = batch.load(session, claimed)
        results: dict[int, ZoneResult] = {}
        failed_zones: dict[int, TransientDnsError] = {}
        for zone_id in sorted({change.zone_id for change in work.pending() if change.zone_id is not None}):
            try:
                results[zone_id] = _apply_zone(session, settings, work, work.zones[zone_id])
            except TransientDnsError as exc:
                logger.warning("zone %s: %s", work.zones[zone_id].name, exc.detail, extra={"code": exc.code})
                failed_zones[zone_id] = exc
        outcome, error = outcomes.conclude(work, attempt, results, failed_zones)
        settle.record(session, outcome)
        session.commit()
    if error is not None:
        raise error
    ended = {row[0] for row in outcome.requests if RequestStatus(row[1]).terminal}
    return [
        member.request_id for member in claimed.members if member.source == Source.kafka and member.request_id in ended
    ]


def _apply_zone(session: Session, settings: Settings, work: Pass, zone: Zone) -> ZoneResult:
    """Send the zone's RRsets, prove them served; which failed. Raises TransientDnsError."""
    assert zone.id is not None
    changes = work.pending(zone.id)
    requests_of: dict[Key, frozenset[uuid.UUID]] = {}
    for change in changes:
        requests_of[change.key] = requests_of.get(change.key, frozenset()) | {change.request_id}
    keys = list(requests_of)
    wanted = {key: _wanted(key, work.rows.get(key), zone) for key in keys}
    server = rfc2136.Server(zone.primary_host, zone.primary_port, settings.dns_timeout_s)
    versions = {key: history.applied_version(row.applied) for key, row in work.rows.items()}
    started = time.perf_counter()
    tsig: rfc2136.TsigKey | None = None
    try:
        tsig = rfc2136.TsigKey(
            zone.tsig_key_name, zone.tsig_algorithm, tsig_secret(settings, zone.tsig_key_name).get_secret_value()
        )
    except SecretUnavailable as exc:
        sent = updates.Sent(failures={key: Failure(exc.code, exc.detail) for key in keys})
    else:
        sent = updates.send(
            updates.ZonePrimary(zone.name, tsig, server),
            list(wanted.values()),
            requests_of.__getitem__,
            lambda asked: history.unconfirmed(session, asked, versions),
        )
    sent_at = utcnow()
    ms = round((time.perf_counter() - started) * 1000, 1)
    failures = sent.failures
    proven = [key for key in keys if key not in failures]
    served, verified_by = verification.served(
        proven, zone=zone.name, key=tsig, server=server, zone_size=lambda: _zone_size(session, zone.id)
    )
    for key in proven:
        item = wanted[key]
        if not rfc2136.matches(served.get(key), item.rtype, item.ttl, item.values):
            failures[key] = _not_applied(item, served.get(key))
    requests = len({change.request_id for change in changes})
    return ZoneResult(zone, keys, failures, sent.messages, sent_at, utcnow(), ms, requests, verified_by)


def _zone_size(session: Session, zone_id: int | None) -> int:
    return int(session.exec(select(func.count(col(RRset.id))).where(RRset.zone_id == zone_id)).one())


def _wanted(key: Key, row: Row | None, zone: Zone) -> rfc2136.RRsetChange:
    """The current desired state of the RRset ``key``, with what we last applied as prerequisite."""
    values = tuple(row.values) if row is not None else ()
    ttl = row.ttl if row is not None else zone.default_ttl
    expected = None
    if zone.drift_policy == DriftPolicy.fail:
        applied = row.applied if row is not None else None
        expected = tuple(applied["values"]) if applied else ()
    return rfc2136.RRsetChange(key[0], key[1], ttl, values, expected)


def _not_applied(item: rfc2136.RRsetChange, served: Any) -> Failure:
    return Failure(
        "not_applied",
        f"the server answered NOERROR but serves {rfc2136.served_text(served)} for {item.owner} {item.rtype}: "
        "it ignored the update (BIND does so for a CNAME beside other data)",
    )


def lock_rrsets(session: Session, zone_id: int, keys: list[Key]) -> dict[Key, RRset]:
    """The RRset rows of ``keys``, locked (in id order, so two workers never deadlock). For reconciliation."""
    if not keys:
        return {}
    statement = (
        select(RRset)
        .where(RRset.zone_id == zone_id, tuple_(col(RRset.owner), col(RRset.rtype)).in_(keys))
        .order_by(col(RRset.id))
        .with_for_update()
    )
    return {(row.owner, row.rtype): row for row in session.exec(statement).all()}


def settle_rrset(session: Session, row: RRset, item: rfc2136.RRsetChange) -> None:
    """``row``'s desired state ``item`` was proven served: record it as applied (a deleted one's row goes)."""
    if item.values:
        row.applied = {"ttl": item.ttl, "values": list(item.values), "version": row.version}
        row.status = RRsetStatus.active
        row.updated_at = utcnow()
        session.add(row)
    else:
        session.delete(row)  # deleted and proven gone


def record_unexpected_failure(engine: Engine, request_id: uuid.UUID, attempt: Attempt, exc: BaseException) -> None:
    """Best effort: say in the tracker that an attempt died of something other than DNS.

    The message is retried like a transient failure; on the last attempt the request is
    failed so that it does not stay in progress. If the database itself is what failed,
    this fails too and only the log line remains. The other requests of the pass were
    rolled back with it: their own messages apply them.
    """
    reason = f"{type(exc).__name__} in the worker"
    try:
        with Session(engine) as session:
            request = tracker.get_request(session, request_id, for_update=True)
            if RequestStatus(request.status).terminal:
                return
            _record_failed_attempt(session, request, attempt, "internal", reason)
    except Exception:
        logger.exception("could not record the failure of request %s in the tracker", request_id)


def _record_failed_attempt(session: Session, request: Request, attempt: Attempt, code: str, reason: str) -> None:
    if attempt.final:
        tracker.add_event(session, request.id, Step.dead_lettered, COMPONENT, code=code, reason=reason)
        pending = session.exec(
            select(RequestChange).where(
                RequestChange.request_id == request.id, RequestChange.status == ChangeStatus.pending
            )
        ).all()
        for change in pending:
            change.status, change.error_code, change.error_detail = ChangeStatus.failed, "retries_exhausted", reason
            session.add(change)
            row = session.exec(select(RRset).where(RRset.owner == change.owner, RRset.rtype == change.rtype)).first()
            if row is not None:
                row.status, row.updated_at = RRsetStatus.error, utcnow()
                session.add(row)
        detail = f"gave up after {attempt.number} attempts: {reason}"
        tracker.move(
            session,
            request,
            RequestStatus.failed,
            Step.failed,
            COMPONENT,
            error_code="retries_exhausted",
            error_detail=detail,
            code="retries_exhausted",
            reason=detail,
        )
    else:
        request.attempts = attempt.number
        tracker.move(
            session,
            request,
            RequestStatus.retrying,
            Step.retry_scheduled,
            COMPONENT,
            error_code=code,
            error_detail=reason,
            code=code,
            reason=reason,
            attempt=attempt.number,
            next_attempt=attempt.number + 1,
        )
    session.commit()
