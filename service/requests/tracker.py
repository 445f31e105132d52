"""The request tracker: where a request is and why, in the database and in the logs.

``open_request`` commits the request row on its own before anything else can fail;
every later step is one ``request_event`` row, written in the same transaction as the
change of state it describes, and one JSON log line.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, TextClause, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from db.models import Request, RequestChange, RequestEvent, RequestStatus, Scope, Source, Step, utcnow
from db.schemas import ChangePublic, RequestEventPublic, RequestPublic, RRsetContent
from db.unnest import columns
from service.core.context import current_client
from service.core.errors import Conflict, NotFound
from service.registry.clients import Principal
from service.requests.payloads import storable

logger = logging.getLogger(__name__)

EventRow = dict[str, Any]  # the columns of one request_event row

# The tracker's writes are fixed SQL, compiled once: building them per call with the ORM or
# Core's multi-row VALUES cost more CPU than the round trips they replaced (docs/performance.md).
_OPEN = text(
    """
    WITH opened AS (
        INSERT INTO request (id, source, client, operation, idempotency_key, payload_hash, status, attempts,
            kafka_topic, kafka_partition, kafka_offset, created_at, updated_at, payload)
        VALUES (:id, :source, :client, :operation, :idempotency_key, :payload_hash, :status, :attempts,
            :kafka_topic, :kafka_partition, :kafka_offset, :created_at, :updated_at, CAST(:payload AS jsonb))
        RETURNING id
    )
    INSERT INTO request_event (request_id, at, step, component, client, detail)
    SELECT id, :event_at, :event_step, :event_component, :event_client, CAST(:event_detail AS jsonb) FROM opened
    """
)
_OPENED = (
    "id",
    "source",
    "client",
    "operation",
    "idempotency_key",
    "payload_hash",
    "status",
    "attempts",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "created_at",
    "updated_at",
    "payload",
)
_MANY = tuple(f"many_{name}" for name in _OPENED)
# Many at once: a request whose id or idempotency key is taken is skipped (DO NOTHING), and so is its step.
_OPEN_MANY = text(
    """
    WITH opened AS (
        INSERT INTO request (id, source, client, operation, idempotency_key, payload_hash, status, attempts,
            kafka_topic, kafka_partition, kafka_offset, created_at, updated_at, payload)
        SELECT * FROM unnest(CAST(:many_id AS uuid[]), CAST(:many_source AS text[]), CAST(:many_client AS text[]),
            CAST(:many_operation AS text[]), CAST(:many_idempotency_key AS text[]), CAST(:many_payload_hash AS text[]),
            CAST(:many_status AS text[]), CAST(:many_attempts AS int[]), CAST(:many_kafka_topic AS text[]),
            CAST(:many_kafka_partition AS int[]), CAST(:many_kafka_offset AS bigint[]),
            CAST(:many_created_at AS timestamptz[]), CAST(:many_updated_at AS timestamptz[]),
            CAST(CAST(:many_payload AS text[]) AS jsonb[]))
        ON CONFLICT DO NOTHING
        RETURNING id
    ), steps AS (
        SELECT * FROM unnest(CAST(:event_request_ids AS uuid[]), CAST(:event_ats AS timestamptz[]),
            CAST(:event_steps AS text[]), CAST(:event_components AS text[]), CAST(:event_clients AS text[]),
            CAST(:event_details AS text[])) AS e(request_id, at, step, component, client, detail)
    )
    INSERT INTO request_event (request_id, at, step, component, client, detail)
    SELECT s.request_id, s.at, s.step, s.component, s.client, CAST(s.detail AS jsonb)
    FROM steps s JOIN opened o ON o.id = s.request_id
    RETURNING request_id
    """
)
# Steps as arrays, one per column: one statement and one compiled form for any number of rows.
_EVENTS = """
    INSERT INTO request_event (request_id, at, step, component, client, detail)
    SELECT request_id, at, step, component, client, CAST(detail AS jsonb)
    FROM unnest(CAST(:event_request_ids AS uuid[]), CAST(:event_ats AS timestamptz[]), CAST(:event_steps AS text[]),
        CAST(:event_components AS text[]), CAST(:event_clients AS text[]), CAST(:event_details AS text[]))
        AS e(request_id, at, step, component, client, detail)
"""
_INSERT_EVENTS = text(_EVENTS)
_ADVANCE_COLUMNS = frozenset({"zone_id", "error_code", "error_detail", "attempts", "idempotency_key", "payload"})


def open_request(
    engine: Engine,
    *,
    request_id: uuid.UUID,
    operation: str,
    payload: dict[str, Any],
    component: str,
    source: Source = Source.api,
    client: str | None = None,
    idempotency_key: str | None = None,
    payload_hash: str | None = None,
    origin: KafkaOrigin | None = None,
) -> Request:
    """Commit the request as ``received``: from here on it is visible, whatever happens next.

    The request row and its ``received`` step go in one statement, committed on its own
    (autocommit: no BEGIN, no COMMIT round trip). Returns the row as committed, detached.
    Raises RepeatedRequest when the client's idempotency key is already taken (by a race).
    """
    opening = Opening(request_id, operation, payload, source, client, idempotency_key, payload_hash, origin)
    request, parameters, _ = _opened(opening, component)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(_OPEN, parameters)
    except IntegrityError as exc:
        if "idempotency" in str(exc.orig):
            raise RepeatedRequest(f"idempotency key {idempotency_key} was taken meanwhile") from exc
        raise Conflict(
            f"request id {request_id} already names another request; send a new X-Request-ID or none",
            code="request_id_in_use",
        ) from exc
    return request


@dataclass(frozen=True)
class Opening:
    """A request to open: what ``open_request`` takes, for ``open_requests``."""

    request_id: uuid.UUID
    operation: str
    payload: dict[str, Any]
    source: Source = Source.api
    client: str | None = None
    idempotency_key: str | None = None
    payload_hash: str | None = None
    origin: KafkaOrigin | None = None


def open_requests(engine: Engine, openings: Sequence[Opening], component: str) -> dict[uuid.UUID, Request]:
    """``open_request`` for many, in ONE autocommitted statement. Returns the rows opened, by id:
    an opening whose request id or idempotency key is taken (by a race) is left out, for the
    caller to open alone, which says why."""
    if not openings:
        return {}
    opened = [_opened(opening, component) for opening in openings]
    requests = columns([[parameters[name] for name in _OPENED] for _, parameters, _ in opened], *_MANY)
    steps = _event_arrays([received for _, _, received in opened])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        inserted = set(connection.execute(_OPEN_MANY, {**requests, **steps}).scalars().all())
    return {request.id: request for request, _, _ in opened if request.id in inserted}


def _opened(opening: Opening, component: str) -> tuple[Request, dict[str, Any], EventRow]:
    """The request row as it will be committed, the parameters of ``_OPEN`` that write it, its received step."""
    origin = opening.origin
    source = Source.kafka if origin else opening.source
    now = utcnow()
    request = Request(
        id=opening.request_id,
        source=source,
        client=opening.client,
        operation=opening.operation,
        payload=storable(opening.payload),
        idempotency_key=opening.idempotency_key,
        payload_hash=opening.payload_hash,
        kafka_topic=origin.topic if origin else None,
        kafka_partition=origin.partition if origin else None,
        kafka_offset=origin.offset if origin else None,
        created_at=now,
        updated_at=now,
    )
    detail: dict[str, Any] = {"operation": opening.operation, "source": str(source)}
    if origin:
        detail.update(topic=origin.topic, partition=origin.partition, offset=origin.offset)
    received = event(opening.request_id, Step.received, component, client=opening.client, **detail)
    parameters = {
        **{name: getattr(request, name) for name in _OPENED},
        "id": str(opening.request_id),
        "source": str(request.source),
        "status": str(request.status),
        "payload": json.dumps(request.payload),
        "event_at": received["at"],
        "event_step": received["step"],
        "event_component": received["component"],
        "event_client": received["client"],
        "event_detail": json.dumps(received["detail"]),
    }
    return request, parameters, received


@dataclass(frozen=True)
class KafkaOrigin:
    """Where a request that came from Kafka was read."""

    topic: str
    partition: int
    offset: int


class RepeatedRequest(Exception):
    """The idempotency key names a request made before; look that one up."""


def add_event(session: Session, request_id: uuid.UUID, step: Step, component: str, **detail: Any) -> None:
    """Add one step to the request's timeline (committed with the caller's transaction) and log it."""
    session.add(
        RequestEvent(
            request_id=request_id, step=step, component=component, client=current_client(), detail=storable(detail)
        )
    )
    logger.info("request %s", step.value, extra={"step": step.value, "detail": detail})


def event(request_id: uuid.UUID, step: Step, component: str, *, client: str | None = None, **detail: Any) -> EventRow:
    """One step of a request as a row for ``insert_events``, logged now (its request id on the line).

    ``client`` defaults to the client the work is done for (the contextvar).
    """
    logger.info("request %s", step.value, extra={"step": step.value, "detail": detail, "request_id": str(request_id)})
    return {
        "request_id": request_id,
        "at": utcnow(),
        "step": step.value,
        "component": component,
        "client": client if client is not None else current_client(),
        "detail": storable(detail),
    }


def insert_events(session: Session, rows: Sequence[EventRow]) -> None:
    """Write many steps (of one request or of many) in one INSERT, in the caller's transaction."""
    if rows:
        session.execute(_INSERT_EVENTS, _event_arrays(rows))


def advance(
    session: Session,
    request_id: uuid.UUID,
    status: RequestStatus,
    events: Sequence[EventRow],
    **columns: Any,
) -> None:
    """Move the request to ``status`` (and set ``columns``: zone_id, error_code, error_detail,
    attempts, idempotency_key, payload) and record ``events``, in the caller's transaction: one
    statement, however many events."""
    unknown = set(columns) - _ADVANCE_COLUMNS
    if unknown:
        raise TypeError(f"advance() cannot set {sorted(unknown)}")
    if "error_detail" in columns:
        columns["error_detail"] = storable(columns["error_detail"])  # a reason may quote the client's input
    if "payload" in columns:
        columns["payload"] = json.dumps(storable(columns["payload"]))
    parameters = {"id": str(request_id), "status": status.value, "updated_at": utcnow(), **columns}
    if events:
        parameters.update(_event_arrays(events))
    session.execute(_advance_statement(frozenset(columns), bool(events)), parameters)


@functools.cache
def _advance_statement(columns: frozenset[str], with_events: bool) -> TextClause:
    assignments = ", ".join(
        f"{name} = CAST(:{name} AS jsonb)" if name == "payload" else f"{name} = :{name}"
        for name in ("status", "updated_at", *sorted(columns))
    )
    moved = f"UPDATE request SET {assignments} WHERE id = :id"  # noqa: S608 (names from _ADVANCE_COLUMNS)
    # One statement: the UPDATE as a data-modifying CTE of the events' INSERT.
    return text(f"WITH moved AS ({moved}) {_EVENTS}" if with_events else moved)


def _event_arrays(rows: Sequence[EventRow]) -> dict[str, list[Any]]:
    values = [
        (str(row["request_id"]), row["at"], row["step"], row["component"], row["client"], json.dumps(row["detail"]))
        for row in rows
    ]
    names = ("event_request_ids", "event_ats", "event_steps", "event_components", "event_clients", "event_details")
    return columns(values, *names)


def set_status(
    session: Session,
    request: Request,
    status: RequestStatus,
    *,
    error_code: str | None = None,
    error_detail: str | None = None,
) -> None:
    request.status = status
    request.updated_at = utcnow()
    if error_code is not None:
        request.error_code = error_code
        request.error_detail = storable(error_detail)  # a reason may quote the client's input
    session.add(request)


def move(
    session: Session,
    request: Request,
    status: RequestStatus,
    step: Step,
    component: str,
    *,
    error_code: str | None = None,
    error_detail: str | None = None,
    **detail: Any,
) -> None:
    """The request moves to ``status`` with the step that says so, in the caller's transaction."""
    set_status(session, request, status, error_code=error_code, error_detail=error_detail)
    add_event(session, request.id, step, component, **detail)


def get_request(session: Session, request_id: uuid.UUID, *, for_update: bool = False) -> Request:
    statement = select(Request).where(Request.id == request_id)
    if for_update:
        statement = statement.with_for_update()
    request = session.exec(statement).first()
    if request is None:
        raise NotFound(f"no request has the id {request_id}", code="request_not_found")
    return request


def describe_request(session: Session, principal: Principal, *, request_id: str) -> RequestPublic:
    """The request and its steps in order, as the API shows them.

    404 for an unknown id, and for another client's request unless the caller is an admin.
    """
    principal.require(Scope.read)
    try:
        parsed = uuid.UUID(request_id)
    except ValueError:
        raise NotFound(f"no request has the id {request_id[:64]!r}", code="request_not_found") from None
    request = get_request(session, parsed)
    if not principal.admin and request.client != principal.name:
        raise NotFound(f"no request has the id {parsed}", code="request_not_found")
    return RequestPublic(
        request_id=request.id,
        source=request.source,
        client=request.client,
        operation=request.operation,
        payload=request.payload,
        status=request.status,
        attempts=request.attempts,
        error_code=request.error_code,
        error_detail=request.error_detail,
        created_at=request.created_at,
        updated_at=request.updated_at,
        changes=[_change_public(change) for change in changes_of(session, parsed)],
        events=[RequestEventPublic.model_validate(event, from_attributes=True) for event in events_of(session, parsed)],
    )


def change_list(session: Session, request_id: uuid.UUID) -> list[ChangePublic]:
    return [_change_public(change) for change in changes_of(session, request_id)]


def changes_of(session: Session, request_id: uuid.UUID) -> list[RequestChange]:
    statement = select(RequestChange).where(RequestChange.request_id == request_id).order_by(col(RequestChange.seq))
    return list(session.exec(statement).all())


def _change_public(change: RequestChange) -> ChangePublic:
    return ChangePublic(
        zone=change.zone,
        name=change.owner,
        type=change.rtype,
        action=change.action,  # type: ignore[arg-type]
        before=RRsetContent.model_validate(change.before) if change.before else None,
        after=RRsetContent.model_validate(change.after) if change.after else None,
        status=change.status,
        error_code=change.error_code,
        error_detail=change.error_detail,
    )


def events_of(session: Session, request_id: uuid.UUID) -> list[RequestEvent]:
    statement = select(RequestEvent).where(RequestEvent.request_id == request_id).order_by(col(RequestEvent.id))
    return list(session.exec(statement).all())
