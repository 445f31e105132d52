"""Applying one request: make the zone's primary serve the desired RRset, prove it, record it.

The worker applies the *current* desired state of the RRset, not the request's delta,
so a repeated or late message converges instead of undoing newer work.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, select

from db.models import Request, RequestStatus, RRset, RRsetStatus, Step, Zone, utcnow
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


def apply_request(engine: Engine, settings: Settings, request_id: uuid.UUID, attempt: Attempt) -> None:
    """Run one attempt. Raises TransientDnsError when the attempt should be retried."""
    with Session(engine) as session:
        request = tracker.get_request(session, request_id, for_update=True)
        if RequestStatus(request.status).terminal:
            logger.info("request already %s; nothing to do", request.status)
            return
        rrset = session.get(RRset, request.rrset_id)
        zone = session.get(Zone, request.zone_id)
        if rrset is None or zone is None:
            _fail(session, request, "desired_state_missing", "the request's RRset or zone no longer exists")
            return
        request.attempts = attempt.number
        tracker.set_status(session, request, RequestStatus.in_progress)
        tracker.add_event(session, request_id, Step.started, COMPONENT, attempt=attempt.number)
        session.commit()
        target = (zone.name, rrset.owner, rrset.rtype, rrset.ttl, tuple(rrset.values), rrset.version)
        server = rfc2136.Server(zone.primary_host, zone.primary_port, settings.dns_timeout_s)
        key_name, key_algorithm = zone.tsig_key_name, zone.tsig_algorithm

    zone_name, owner, rtype, ttl, values, version = target
    try:
        key = rfc2136.TsigKey(key_name, key_algorithm, tsig_secret(settings, key_name).get_secret_value())
        update = rfc2136.replace_rrset_update(zone_name, owner, rtype, ttl, values, key)
        started = time.perf_counter()
        rcode = rfc2136.send_update(update, server)
        sent_ms = round((time.perf_counter() - started) * 1000, 1)
        _event(engine, request_id, Step.dns_sent, server=f"{server.host}:{server.port}", rcode=rcode.name, ms=sent_ms)
        served = rfc2136.served_rrset(owner, rtype, server)
        if not rfc2136.matches(served, rtype, ttl, values):
            shown = sorted(rdata.to_text() for rdata in served) if served is not None else []
            raise PermanentDnsError(
                f"the server answered NOERROR but serves {shown or 'nothing'} for {owner} {rtype}: it ignored "
                "the update (BIND does so for a CNAME beside other data)",
                code="not_applied",
            )
        _event(engine, request_id, Step.dns_verified, served=list(values), ttl=ttl)
    except (PermanentDnsError, SecretUnavailable) as exc:
        with Session(engine) as session:
            request = tracker.get_request(session, request_id, for_update=True)
            _mark_rrset(session, request.rrset_id, version, RRsetStatus.error)
            _fail(session, request, exc.code, exc.detail)
        return
    except TransientDnsError as exc:
        with Session(engine) as session:
            request = tracker.get_request(session, request_id, for_update=True)
            if attempt.final:
                _mark_rrset(session, request.rrset_id, version, RRsetStatus.error)
            _attempt_failed(session, request, attempt, exc.code, exc.detail)
        raise

    with Session(engine) as session:
        request = tracker.get_request(session, request_id, for_update=True)
        _mark_rrset(session, request.rrset_id, version, RRsetStatus.active)
        tracker.set_status(session, request, RequestStatus.succeeded)
        request.error_code = request.error_detail = None
        tracker.add_event(session, request_id, Step.succeeded, COMPONENT, attempts=attempt.number)
        session.commit()


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
            if attempt.final:
                _mark_rrset(session, request.rrset_id, None, RRsetStatus.error)
            _attempt_failed(session, request, attempt, "internal", reason)
    except Exception:
        logger.exception("could not record the failure of request %s in the tracker", request_id)


def _attempt_failed(session: Session, request: Request, attempt: Attempt, code: str, reason: str) -> None:
    """Record a failed attempt: retrying, or on the last attempt dead-lettered and failed."""
    if attempt.final:
        tracker.add_event(session, request.id, Step.dead_lettered, COMPONENT, code=code, reason=reason)
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


def _event(engine: Engine, request_id: uuid.UUID, step: Step, **detail: object) -> None:
    with Session(engine) as session:
        tracker.add_event(session, request_id, step, COMPONENT, **detail)
        session.commit()


def _fail(session: Session, request: Request, code: str, detail: str) -> None:
    tracker.set_status(session, request, RequestStatus.failed, error_code=code, error_detail=detail)
    tracker.add_event(session, request.id, Step.failed, COMPONENT, code=code, reason=detail)
    session.commit()


def _mark_rrset(session: Session, rrset_id: int | None, version: int | None, status: RRsetStatus) -> None:
    """Set the RRset's status, unless a newer version than ``version`` was asked for meanwhile."""
    rrset = session.exec(select(RRset).where(RRset.id == rrset_id).with_for_update()).first()
    if rrset is not None and version in (None, rrset.version):
        rrset.status = status
        rrset.updated_at = utcnow()
        session.add(rrset)
