"""Accepting a record request: track it, validate it, store the desired RRset, queue it."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from db.models import Request, RequestStatus, RRset, RRsetStatus, Step, Zone
from db.schemas import RecordCreate
from service import tracker
from service.dispatch import Dispatcher
from service.errors import Conflict, DependencyUnavailable, InvalidRequest, RequestRejected
from service.payloads import parse_json_body, unparsed
from service.validation import DesiredRRset, validate_record, violations_from_pydantic

logger = logging.getLogger(__name__)

COMPONENT = "api"


def submit_record(
    *,
    engine: Engine,
    dispatcher: Dispatcher,
    request_id: uuid.UUID,
    body: bytes,
    client: str | None = None,
) -> Request:
    """Create one RRset as asked by ``body`` (JSON) and queue it for the workers.

    The request is committed as received before the body is even parsed; a rejected
    request ends as ``rejected`` with its reason and changes nothing else.
    """
    payload: Any = None
    parse_error: InvalidRequest | None = None
    try:
        payload = parse_json_body(body)
        stored_payload = payload if isinstance(payload, dict) else {"body": payload}
    except InvalidRequest as exc:
        parse_error, stored_payload = exc, unparsed(body)
    tracker.open_request(
        engine,
        request_id=request_id,
        operation="record.create",
        payload=stored_payload,
        component=COMPONENT,
        client=client,
    )
    with Session(engine) as session:
        request = tracker.get_request(session, request_id)
        try:
            if parse_error is not None:
                raise parse_error
            desired = _validate(session, payload)
            rrset = _create_rrset(session, desired, request_id)
        except RequestRejected as exc:
            session.rollback()
            _reject(session, request_id, exc)
            raise
        except Exception:
            session.rollback()
            _fail_unexpectedly(engine, request_id)
            raise
        tracker.add_event(session, request_id, Step.validated, COMPONENT, zone=desired.zone.name)
        request.zone_id = desired.zone.id
        request.rrset_id = rrset.id
        tracker.set_status(session, request, RequestStatus.queued)
        tracker.add_event(
            session, request_id, Step.queued, COMPONENT, owner=rrset.owner, type=rrset.rtype, version=rrset.version
        )
        session.commit()
        session.refresh(request)
    try:
        dispatcher.enqueue_apply(request_id)
    except DependencyUnavailable as exc:
        # The desired state and the tracker are committed; the request stays queued and
        # is visible as such. Re-enqueueing it is the recovery job's work.
        logger.error("request %s stays queued: %s", request_id, exc.detail)
        with Session(engine) as session:
            tracker.add_event(session, request_id, Step.enqueue_failed, COMPONENT, reason=exc.detail)
            session.commit()
    return request


def _validate(session: Session, payload: Any) -> DesiredRRset:
    try:
        record = RecordCreate.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(violations_from_pydantic(exc)) from None
    zones = session.exec(select(Zone)).all()
    desired = validate_record(record, zones)
    _check_conflicts(session, desired)
    return desired


def _check_conflicts(session: Session, desired: DesiredRRset) -> None:
    at_owner = session.exec(select(RRset).where(RRset.owner == desired.owner)).all()
    for existing in at_owner:
        if existing.rtype == desired.rtype:
            raise Conflict(f"the RRset {existing.owner} {existing.rtype} already exists", code="rrset_exists")
        if "CNAME" in (existing.rtype, desired.rtype):
            raise Conflict(
                f"{desired.owner} already has a {existing.rtype} RRset; a CNAME cannot share its name "
                "with other data (RFC 1034 §3.6.2)",
                code="cname_conflict",
            )


def _create_rrset(session: Session, desired: DesiredRRset, request_id: uuid.UUID) -> RRset:
    rrset = RRset(
        zone_id=desired.zone.id or 0,
        owner=desired.owner,
        rtype=desired.rtype,
        ttl=desired.ttl,
        values=list(desired.values),
        status=RRsetStatus.pending,
        last_request_id=request_id,
    )
    session.add(rrset)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"the RRset {desired.owner} {desired.rtype} already exists", code="rrset_exists") from exc
    return rrset


def _fail_unexpectedly(engine: Engine, request_id: uuid.UUID) -> None:
    """Best effort: a request that hit a fault of ours ends failed, not received forever."""
    try:
        with Session(engine) as session:
            request = tracker.get_request(session, request_id)
            tracker.set_status(
                session,
                request,
                RequestStatus.failed,
                error_code="internal",
                error_detail="Hostmaster failed while validating the request; quote the request id to support",
            )
            tracker.add_event(session, request_id, Step.failed, COMPONENT, code="internal")
            session.commit()
    except Exception:
        logger.exception("could not record the failure of request %s", request_id)


def _reject(session: Session, request_id: uuid.UUID, exc: RequestRejected) -> None:
    request = tracker.get_request(session, request_id)
    tracker.set_status(session, request, RequestStatus.rejected, error_code=exc.code, error_detail=exc.detail)
    detail: dict[str, Any] = {"code": exc.code, "reason": exc.detail}
    if isinstance(exc, InvalidRequest):
        detail["violations"] = [{"field": v.field, "message": v.message} for v in exc.violations]
    tracker.add_event(session, request_id, Step.rejected, COMPONENT, **detail)
    session.commit()
