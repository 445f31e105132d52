"""Dramatiq actors. Each takes an id (a request's, a reconciliation report's), never an ORM object,
and is idempotent."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import dramatiq
from dramatiq.common import compute_backoff
from dramatiq.middleware import CurrentMessage, TimeLimitExceeded

from db.engine import make_engine
from db.models import Source
from service.dispatch import APPLY_ACTOR, RECONCILE_ACTOR
from service.errors import TransientDnsError
from workers import apply, coalesce, reconcile, results
from workers.broker import broker, settings

logger = logging.getLogger(__name__)

engine = make_engine(settings.database_dsn, connect_timeout_s=settings.database_timeout_s)

# A reconciliation is tried again a few times only: the schedule (or an admin) asks again later.
RECONCILE_RETRIES = 2


@dramatiq.actor(
    actor_name=APPLY_ACTOR,
    queue_name=settings.queue_name,
    broker=broker,
    max_retries=settings.max_retries,
    min_backoff=settings.min_backoff_ms,
    max_backoff=settings.max_backoff_ms,
    time_limit=settings.apply_time_limit_s * 1000,
)
def apply_request(request_id: str) -> None:
    """Make the zones' primaries serve the request's RRsets, with those of the requests waiting for the
    same zones (workers/coalesce.py). Transient failures raise, so Dramatiq retries."""
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else 0
    attempt = apply.Attempt(number=retries + 1, final=retries >= settings.max_retries)
    delivery = coalesce.Delivery()
    if message is not None:
        delivery = coalesce.Delivery(message.message_id, datetime.fromtimestamp(message.message_timestamp / 1000, UTC))
    try:
        skipped = apply.apply_request(
            engine, settings, uuid.UUID(request_id), attempt, enqueue=_enqueue_retry, delivery=delivery
        )
    except TransientDnsError:
        if attempt.final:
            _announce_best_effort(request_id)
        raise  # already recorded as retry_scheduled, or as failed on the last attempt
    except (Exception, TimeLimitExceeded):  # TimeLimitExceeded is a BaseException
        logger.exception("attempt %d failed unexpectedly", attempt.number)  # recorded by apply, best effort
        if attempt.final:
            _announce_best_effort(request_id)
        raise
    if skipped is None or skipped.announce:
        results.announce(engine, settings, uuid.UUID(request_id))  # a Kafka failure retries; the apply is done
    elif skipped.reason == coalesce.Skip.elsewhere and skipped.source == Source.kafka and message is not None:
        # In another worker's batch: if that batch is another request's, this message publishes the
        # result, so it looks again once the batch is over.
        broker.enqueue(message.copy(), delay=settings.min_backoff_ms)


def _enqueue_retry(requeue: apply.Requeue) -> None:
    """The message for the retry of a request whose attempt in another's batch failed transiently:
    Dramatiq's backoff for that attempt, its count as ``retries``."""
    _, delay = compute_backoff(
        requeue.attempts - 1, factor=settings.min_backoff_ms, max_backoff=settings.max_backoff_ms
    )
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name=settings.queue_name,
        actor_name=APPLY_ACTOR,
        args=(str(requeue.request_id),),
        kwargs={},
        options={"request_id": str(requeue.request_id), "client": requeue.client, "retries": requeue.attempts},
    )
    broker.enqueue(message, delay=delay)


def _announce_best_effort(request_id: str) -> None:
    try:
        results.announce(engine, settings, uuid.UUID(request_id))
    except Exception:
        logger.exception("the result of request %s could not be published", request_id)


@dramatiq.actor(
    actor_name=RECONCILE_ACTOR,
    queue_name=settings.queue_name,
    broker=broker,
    max_retries=RECONCILE_RETRIES,
    min_backoff=settings.min_backoff_ms,
    max_backoff=settings.max_backoff_ms,
    time_limit=settings.apply_time_limit_s * 1000,
)
def reconcile_zone(report_id: int) -> None:
    """Compare a zone with its desired state, repairing it when the report says so.

    Transient failures raise, so Dramatiq retries; the last attempt records every failure in
    the report and returns, so a reconciliation never lands in the dead-letter queue.
    """
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else 0
    attempt = apply.Attempt(number=retries + 1, final=retries >= RECONCILE_RETRIES)
    try:
        reconcile.reconcile(engine, settings, report_id, attempt)
    except TransientDnsError:
        raise  # recorded in the report; raised only when another attempt follows
    except (Exception, TimeLimitExceeded) as exc:  # TimeLimitExceeded is a BaseException
        logger.exception("reconciliation attempt %d failed unexpectedly", attempt.number)
        reconcile.record_unexpected_failure(engine, report_id, attempt, exc)
        if not attempt.final:
            raise
