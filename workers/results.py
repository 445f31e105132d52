"""The results topic: when a request that came from Kafka ends, its result is published there.

The consumer publishes the results it decides itself (refusals, nothing to change); the
worker publishes what it decides (succeeded, failed), once per request (``request.announced_at``)
however many messages reach it. Keyed by the event id, so a reader keeps the last.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError
from sqlalchemy import Engine, text
from sqlmodel import Session

from db.models import RequestStatus, Source, utcnow
from service.core import kafka_clients
from service.core.errors import TransientDnsError
from service.core.settings import Settings
from service.requests import tracker

logger = logging.getLogger(__name__)

_producer: KafkaProducer | None = None
_lock = threading.Lock()


def announce(engine: Engine, settings: Settings, request_id: uuid.UUID) -> None:
    """Publish the request's result if it came from Kafka, has ended and was not announced yet.

    The request's row stays locked from the check until the flag is committed, so of the
    messages that may reach an ended request (a retry, a replayed event's second message, a
    re-drive) exactly one publishes. A Kafka failure raises (Dramatiq tries again) and leaves
    the flag unset; only a commit that never comes after Kafka's ack (the worker killed, the
    database gone) lets the message that comes back publish it again.
    """
    with Session(engine) as session:
        request = tracker.get_request(session, request_id, for_update=True)
        if request.source != Source.kafka or not RequestStatus(request.status).terminal:
            return
        if request.announced_at is not None:
            logger.info("result of request %s already published", request_id)
            return
        event_id = request.idempotency_key
        value = {
            "request_id": str(request.id),
            "event_id": event_id,
            "status": request.status,
            "error": {"code": request.error_code, "detail": request.error_detail} if request.error_code else None,
        }
        try:
            _get_producer(settings).send(
                kafka_clients.results_topic(settings, request.kafka_topic),
                key=(event_id or "").encode() or None,
                value=json.dumps(value).encode(),
            ).get(timeout=settings.kafka_timeout_s)
        except KafkaError as exc:
            raise TransientDnsError(f"the result could not be published: {type(exc).__name__}", code="kafka") from exc
        request.announced_at = utcnow()
        session.commit()
    logger.info("result %s published for event %s", value["status"], event_id)


_UNANNOUNCED = text(
    """
    SELECT id, idempotency_key, status, error_code, error_detail, kafka_topic FROM request
    WHERE id = ANY(CAST(:ids AS uuid[])) AND source = 'kafka' AND announced_at IS NULL
      AND status IN ('succeeded', 'failed', 'rejected')
    ORDER BY id FOR UPDATE
    """
)
_ANNOUNCED = text("UPDATE request SET announced_at = :now WHERE id = ANY(CAST(:ids AS uuid[]))")


def announce_many(engine: Engine, settings: Settings, request_ids: Sequence[uuid.UUID]) -> None:
    """``announce`` for the Kafka requests a pass ended: one read, every publish awaited, one write.

    The once-rule is the same: the rows stay locked from the check until the flags are committed.
    The results Kafka acknowledged are flagged even when another failed; then TransientDnsError
    (the message is retried, and the own message of each one left unannounced publishes it).
    """
    if not request_ids:
        return
    if len(request_ids) == 1:
        announce(engine, settings, request_ids[0])
        return
    with Session(engine) as session:
        rows = session.execute(_UNANNOUNCED, {"ids": [str(request_id) for request_id in request_ids]}).all()
        if not rows:
            return
        producer = _get_producer(settings)
        sending = []
        for request_id, event_id, status, code, detail, topic in rows:
            value = {
                "request_id": str(request_id),
                "event_id": event_id,
                "status": status,
                "error": {"code": code, "detail": detail} if code else None,
            }
            try:
                future = producer.send(
                    kafka_clients.results_topic(settings, topic),
                    key=(event_id or "").encode() or None,
                    value=json.dumps(value).encode(),
                )
            except KafkaError as exc:
                logger.warning("the result of request %s could not be sent: %s", request_id, type(exc).__name__)
                continue
            sending.append((request_id, status, event_id, future))
        published: list[str] = []
        for request_id, status, event_id, future in sending:
            try:
                future.get(timeout=settings.kafka_timeout_s)
            except KafkaError as exc:
                logger.warning("the result of request %s was not acknowledged: %s", request_id, type(exc).__name__)
                continue
            published.append(str(request_id))
            logger.info("result %s published for event %s", status, event_id)
        if published:
            session.execute(_ANNOUNCED, {"ids": published, "now": utcnow()})
        session.commit()
    if len(published) < len(rows):
        raise TransientDnsError(f"{len(rows) - len(published)} results could not be published", code="kafka")


def _get_producer(settings: Settings) -> KafkaProducer:
    global _producer
    with _lock:
        if _producer is None:
            _producer = kafka_clients.producer(settings)
        return _producer
