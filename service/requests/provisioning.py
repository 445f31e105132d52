"""Accepting a write: track it, plan it, store the desired state, queue it.

Every write — a v1 create, replace or delete, or a v2 change set — is a change set here.
The request is committed as received before its body is even parsed; a rejected request
ends as ``rejected`` with its reason and changes nothing else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from db.models import MAX_VALUES, Request, RequestStatus, Scope, Step, Zone, utcnow
from db.schemas import ChangeIn, ChangeSetIn, PlannedChange, RecordCreate, RecordReplace
from service.core.dispatch import Dispatcher
from service.core.errors import Conflict, DependencyUnavailable, InvalidRequest, RequestRejected, Violation
from service.core.settings import Settings
from service.dns.names import shown
from service.dns.validation import violations_from_pydantic
from service.planning import changes
from service.registry import quotas, zones
from service.registry.clients import Principal
from service.requests import tracker
from service.requests.payloads import kept_of_refused, parse_json_body, unparsed
from service.requests.tracker import KafkaOrigin

logger = logging.getLogger(__name__)

COMPONENT = "api"


@dataclass(frozen=True)
class KeyWindow:
    """How long an Idempotency-Key answers with its request, and when an unplanned one counts as abandoned."""

    retention: timedelta = timedelta(hours=24)
    abandon_after: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class Limits:
    """What one write may hold and how long its Idempotency-Key answers: the settings' limits."""

    max_changes: int = 10_000
    max_values: int = MAX_VALUES
    key_window: KeyWindow = KeyWindow()

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        window = KeyWindow(
            retention=timedelta(hours=settings.idempotency_retention_h),
            abandon_after=timedelta(seconds=settings.abandon_after_s),
        )
        return cls(max_changes=settings.max_changes, max_values=settings.max_values, key_window=window)


@dataclass(frozen=True)
class ChangeRequest:
    """A write, parsed: its operations and where violations point in its body."""

    changes: list[ChangeIn]
    zone: str | None = None  # v2: the zone in the path
    dry_run: bool = False
    force: bool = False
    single: bool = False  # v1: one RRset, 404 when missing and 409 when it exists
    field_prefix: str = ""

    def field_of(self, index: int) -> str:
        return f"{self.field_prefix}[{index}]." if self.field_prefix else ""


@dataclass(frozen=True)
class Outcome:
    request: Request | None  # None for a dry run, which is not a request
    changes: list[PlannedChange]
    repeated: bool = False  # the same idempotency key and body as an earlier request: that one


Parser = Callable[[Any], ChangeRequest]


def record_create(payload: Any) -> ChangeRequest:
    record = _model(RecordCreate, payload)
    change = ChangeIn(
        op="create", name=record.name, type=record.type, values=record.values, ttl=record.ttl, ptr=record.ptr
    )
    return ChangeRequest([change], single=True)


def record_replace(name: str, rtype: str) -> Parser:
    def parse(payload: Any) -> ChangeRequest:
        record = _model(RecordReplace, payload)
        change = ChangeIn(op="upsert", name=name, type=rtype, values=record.values, ttl=record.ttl, ptr=record.ptr)
        return ChangeRequest([change], single=True)

    return parse


def record_delete(name: str, rtype: str) -> Parser:
    def parse(payload: Any) -> ChangeRequest:
        return ChangeRequest([ChangeIn(op="delete", name=name, type=rtype)], single=True)

    return parse


def change_set(zone: str) -> Parser:
    def parse(payload: Any) -> ChangeRequest:
        body = _model(ChangeSetIn, payload)
        return ChangeRequest(body.changes, zone=zone, dry_run=body.dry_run, force=body.force, field_prefix="changes")

    return parse


def submit(
    *,
    engine: Engine,
    dispatcher: Dispatcher,
    request_id: uuid.UUID,
    body: bytes | None,
    parser: Parser,
    operation: str,
    limits: Limits,
    target: dict[str, str] | None = None,
    principal: Principal | None = None,
    idempotency_key: str | None = None,
    origin: KafkaOrigin | None = None,
) -> Outcome:
    """Plan the write ``body`` asks for and, unless it is a dry run, commit and queue it."""
    max_values, key_window = limits.max_values, limits.key_window
    payload: Any = None
    early_error: RequestRejected | None = None
    try:
        payload = parse_json_body(body) if body is not None else {}
        asked = parse_write(parser, payload, limits.max_changes)
    except RequestRejected as exc:
        early_error = exc
    if early_error is None and asked.dry_run:
        with Session(engine) as session:  # never committed: what the quota counts is rolled back
            items = plan_write(session, asked, principal, max_values)
            charge(session, principal, items)
            return Outcome(None, [item.public() for item in items])

    stored = storable_payload(payload, body)
    if target:
        stored = {**stored, "target": target}
    client = principal.name if principal else None
    payload_hash = hash_of(operation, stored) if idempotency_key else None
    if idempotency_key and (earlier := reuse_of_key(engine, client, idempotency_key, payload_hash, key_window)):
        if earlier.request is not None and earlier.request.status == RequestStatus.queued:
            enqueue(engine, dispatcher, earlier.request.id)  # its message may never have left: send it again
        return earlier
    try:
        opened = tracker.open_request(
            engine,
            request_id=request_id,
            operation=operation,
            payload=stored,
            component=COMPONENT,
            client=client,
            idempotency_key=idempotency_key,
            payload_hash=payload_hash,
            origin=origin,
        )
    except tracker.RepeatedRequest:  # the same key, sent twice at once: the other one won
        earlier = reuse_of_key(engine, client, idempotency_key or "", payload_hash, key_window)
        assert earlier is not None
        return earlier
    with Session(engine) as session:
        try:
            if early_error is not None:
                raise early_error
            items = plan_write(session, asked, principal, max_values)
            planned = [item.public() for item in items]
            write_plan(session, request_id, items, principal)
        except RequestRejected as exc:
            session.rollback()
            record_rejection(session, request_id, exc, stored)
            session.commit()
            raise
        except Exception:
            session.rollback()
            fail_unexpectedly(engine, request_id)
            raise
        record_acceptance(session, opened, items)
        session.commit()
    if items:
        enqueue(engine, dispatcher, request_id)
    return Outcome(opened, planned)


def parse_write(parser: Parser, payload: Any, max_changes: int) -> ChangeRequest:
    """The write ``payload`` asks for; InvalidRequest when it holds no change or too many."""
    asked = parser(payload)
    if len(asked.changes) > max_changes:
        raise InvalidRequest([Violation("changes", f"holds {len(asked.changes)} changes; the limit is {max_changes}")])
    if not asked.changes:
        raise InvalidRequest([Violation("changes", "must hold at least one change")])
    return asked


def record_acceptance(session: Session, opened: Request, items: Sequence[changes.PlanItem]) -> None:
    """The request planned as ``items`` (written already): validated, then queued — or, with
    nothing to change, succeeded at once. In the caller's transaction; ``opened`` follows."""
    request_id = opened.id
    zone_ids = {item.zone.id for item in items}
    opened.zone_id = zone_ids.pop() if len(zone_ids) == 1 else None
    validated = tracker.event(request_id, Step.validated, COMPONENT, changes=len(items))
    if items:
        opened.status = RequestStatus.queued
        done = tracker.event(request_id, Step.queued, COMPONENT, changes=len(items))
    else:
        opened.status = RequestStatus.succeeded
        done = tracker.event(request_id, Step.succeeded, COMPONENT, reason="nothing to change")
    tracker.advance(session, request_id, RequestStatus(opened.status), [validated, done], zone_id=opened.zone_id)


def hash_of(operation: str, stored: dict[str, Any]) -> str:
    canonical = json.dumps({"operation": operation, "payload": stored}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", errors="backslashreplace")).hexdigest()


def reuse_of_key(
    engine: Engine, client: str | None, key: str, payload_hash: str | None, window: KeyWindow
) -> Outcome | None:
    """The earlier request this client made with ``key``, to answer with again (the same body), or a
    409 (another body); None when the key is free. Not only a lookup: a key past its retention is
    released, and a request its API left unplanned is ended as abandoned — each committed here —
    after which the key is free."""
    with Session(engine) as session:
        found = session.exec(select(Request).where(Request.client == client, Request.idempotency_key == key)).first()
        if found is None:
            return None
        age = utcnow() - found.created_at
        if age > window.retention:  # the recovery job releases such keys; until it runs, so does this
            found.idempotency_key = None
            session.add(found)
            session.commit()
            return None
        if found.status == RequestStatus.received and age > window.abandon_after:
            # Its process died between the tracker row and the plan: nothing was changed.
            found.idempotency_key = None
            tracker.move(
                session,
                found,
                RequestStatus.failed,
                Step.failed,
                COMPONENT,
                error_code="abandoned",
                error_detail="the API stopped before this request was planned; it was sent again",
                code="abandoned",
            )
            session.commit()
            return None
        if found.payload_hash != payload_hash:
            raise Conflict(
                f"the idempotency key {shown(key)} was used for a different request ({found.id}); "
                "use a new key for a new request",
                code="idempotency_key_reused",
            )
        if found.status == RequestStatus.received:
            raise Conflict(
                f"the request {found.id} with idempotency key {shown(key)} is still being planned; "
                "send it again in a few seconds to learn its outcome",
                code="idempotency_key_in_flight",
                retry_after_s=2,
            )
        planned = [
            PlannedChange.model_validate(change.model_dump(exclude={"status", "error_code", "error_detail"}))
            for change in tracker.change_list(session, found.id)
        ]
        session.expunge(found)
        return Outcome(found, planned, repeated=True)


def storable_payload(payload: Any, body: bytes | None) -> dict[str, Any]:
    if payload is None:  # the body is not JSON
        return unparsed(body or b"")
    return payload if isinstance(payload, dict) else {"body": payload}


def plan_write(
    session: Session,
    asked: ChangeRequest,
    principal: Principal | None,
    max_values: int,
    registry: Sequence[Zone] | None = None,
) -> list[changes.PlanItem]:
    """The plan of one write (service/planning/changes.py); ``registry``: the zones, when read already."""
    scope = zones.get_zone(session, asked.zone) if asked.zone is not None else None
    if scope is not None and principal is not None:
        principal.require(Scope.write, [scope.name])
    return changes.plan(
        session,
        asked.changes,
        scope=scope,
        field_of=asked.field_of,
        force=asked.force,
        single=asked.single,
        principal=principal,
        max_values=max_values,
        registry=registry,
    )


def write_plan(
    session: Session,
    request_id: uuid.UUID,
    items: Sequence[changes.PlanItem],
    principal: Principal | None,
    tally: quotas.Tally | None = None,
) -> None:
    """The plan counted against the client's quotas, then written (caller commits); ``tally``:
    what the transaction counted already, when it holds many writes of the client."""
    charge(session, principal, items, tally)
    changes.commit(session, request_id, items, creator=principal.name if principal else None)


def charge(
    session: Session,
    principal: Principal | None,
    items: Sequence[changes.PlanItem],
    tally: quotas.Tally | None = None,
) -> None:
    """QuotaExceeded when the plan passes one of the client's quotas (service/registry/quotas.py)."""
    if principal is not None and principal.quota.limited:
        added = changes.rrsets_added(items, principal.name)
        quotas.charge(session, principal.name, principal.quota, changes=len(items), added=added, tally=tally)


def enqueue(engine: Engine, dispatcher: Dispatcher, request_id: uuid.UUID, component: str = COMPONENT) -> bool:
    """Send the request's message; True when it left. With the broker down the request stays
    queued, visibly (an ``enqueue_failed`` step), and the recovery job sends it again."""
    try:
        dispatcher.enqueue_apply(request_id)
    except DependencyUnavailable as exc:
        logger.error("request %s stays queued: %s", request_id, exc.detail)
        with Session(engine) as session:
            tracker.add_event(session, request_id, Step.enqueue_failed, component, reason=exc.detail)
            session.commit()
        return False
    return True


def _model(model: type[Any], payload: Any) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(violations_from_pydantic(exc)) from None


def fail_unexpectedly(engine: Engine, request_id: uuid.UUID) -> None:
    """Best effort: a request that hit a fault of ours ends failed, not received forever."""
    try:
        with Session(engine) as session:
            request = tracker.get_request(session, request_id)
            request.idempotency_key = None  # nothing was changed: the same request may be sent again
            tracker.move(
                session,
                request,
                RequestStatus.failed,
                Step.failed,
                COMPONENT,
                error_code="internal",
                error_detail="Hostmaster failed while validating the request; quote the request id to support",
                code="internal",
            )
            session.commit()
    except Exception:
        logger.exception("could not record the failure of request %s", request_id)


def record_rejection(
    session: Session, request_id: uuid.UUID, exc: RequestRejected, stored: dict[str, Any] | None = None
) -> None:
    """The request is rejected with ``exc``'s reason, in the caller's transaction; of its body
    (``stored``, as tracked) only the size, hash and start are kept when it is long."""
    detail: dict[str, Any] = {"code": exc.code, "reason": exc.detail}
    if isinstance(exc, InvalidRequest):
        detail["violations"] = [violation.as_json() for violation in exc.violations]
    kept = kept_of_refused(stored) if stored is not None else None
    tracker.advance(
        session,
        request_id,
        RequestStatus.rejected,
        [tracker.event(request_id, Step.rejected, COMPONENT, **detail)],
        error_code=exc.code,
        error_detail=exc.detail,
        idempotency_key=None,  # a refusal changed nothing: sending the same again is a new try
        **({"payload": kept} if kept is not None else {}),
    )
