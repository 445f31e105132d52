"""Dramatiq actors. Each takes an id (a request's, a reconciliation report's), never an ORM object,
and is idempotent."""

from __future__ import annotations

import logging
import uuid

import dramatiq
from dramatiq.middleware import CurrentMessage, TimeLimitExceeded

from db.engine import make_engine
from service.core.dispatch import APPLY_ACTOR, RECONCILE_ACTOR
from service.core.errors import TransientDnsError
from workers import apply, claim, reconcile, results
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
    """Make the zone's primary serve the request's RRsets, with those of the requests waiting for the
    same zone (workers/apply.py). Transient failures raise, so Dramatiq retries."""
    message = CurrentMessage.get_current_message()
    retries = message.options.get("retries", 0) if message is not None else 0
    attempt = apply.Attempt(number=retries + 1, final=retries >= settings.max_retries)
    try:
        ended = apply.apply_request(engine, settings, uuid.UUID(request_id), attempt)
    except claim.Busy:
        if message is None:
            raise
        logger.info("request %s is held by another pass; looking again later", request_id)
        broker.enqueue(message.copy(), delay=settings.min_backoff_ms)  # not an attempt: the same retries
        return
    except TransientDnsError:
        if attempt.final:
            _announce_best_effort(request_id)
        raise  # already recorded as retry_scheduled, or as failed on the last attempt
    except (Exception, TimeLimitExceeded) as exc:  # TimeLimitExceeded is a BaseException
        logger.exception("attempt %d failed unexpectedly", attempt.number)
        apply.record_unexpected_failure(engine, uuid.UUID(request_id), attempt, exc)
        if attempt.final:
            _announce_best_effort(request_id)
        raise
    results.announce_many(engine, settings, ended)  # a Kafka failure retries; the apply is done


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
