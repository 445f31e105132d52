"""The dead-letter queue (``<queue>.XQ``): what died and why, re-drive, purge.

A message lands there when a request ran out of retries; its request is failed with
``retries_exhausted``. Re-driving one gives the request a full retry budget again: the
request is reopened (``queued``, its failed changes pending again, a ``redriven`` step) and a
fresh message is published with confirms; only then is the dead copy acknowledged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
from sqlalchemy import Engine
from sqlmodel import Session, select

from db.models import ChangeStatus, RequestChange, RequestStatus, Step
from service.core.dispatch import APPLY_ACTOR, Dispatcher, broker_url
from service.core.errors import DependencyUnavailable
from service.core.settings import Settings
from service.requests import tracker

COMPONENT = "dlq"


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    request_id: str | None
    actor: str
    retries: int
    reason: str | None  # the error's code and detail from the tracker


@contextmanager
def _channel(settings: Settings) -> Iterator[Any]:
    try:
        connection = pika.BlockingConnection(pika.URLParameters(broker_url(settings)))
    except Exception as exc:  # pika's errors share no useful base
        raise DependencyUnavailable(f"RabbitMQ cannot be reached: {type(exc).__name__}") from exc
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        yield channel
    finally:
        if connection.is_open:
            connection.close()  # anything fetched and not acknowledged goes back to the queue


def _queue(settings: Settings) -> str:
    return f"{settings.queue_name}.XQ"


def list_dead(engine: Engine, settings: Settings, *, limit: int = 1000) -> list[DeadLetter]:
    found = []
    with _channel(settings) as channel:
        for _ in range(limit):
            method, _properties, body = channel.basic_get(_queue(settings), auto_ack=False)
            if method is None:
                break
            found.append(_describe(engine, json.loads(body)))
    return found  # closing the channel puts every one back


def redrive(engine: Engine, settings: Settings, dispatcher: Dispatcher, *, message_id: str | None) -> list[str]:
    """Re-drive the message ``message_id``, or every one; the request ids re-driven (for a message of
    another actor than apply_request, its message id)."""
    redriven = []
    with _channel(settings) as channel:
        while True:
            method, _properties, body = channel.basic_get(_queue(settings), auto_ack=False)
            if method is None:
                break
            message = json.loads(body)
            if message_id is not None and message.get("message_id") != message_id:
                continue  # left unacknowledged: back to the queue when the channel closes
            if message.get("actor_name") == APPLY_ACTOR:
                request_id = uuid.UUID(message["args"][0])
                _reopen(engine, request_id)
                dispatcher.enqueue_apply(request_id)  # a fresh message: a full retry budget, confirmed
                redriven.append(str(request_id))
            else:  # another actor's (a reconciliation): the same call again, with a full retry budget
                dispatcher.enqueue_call(str(message["actor_name"]), tuple(message.get("args", ())))
                redriven.append(str(message.get("message_id")))
            channel.basic_ack(method.delivery_tag)
            if message_id is not None:
                break
    return redriven


def purge(settings: Settings) -> int:
    with _channel(settings) as channel:
        result = channel.queue_purge(_queue(settings))
        return int(result.method.message_count)


def _reopen(engine: Engine, request_id: uuid.UUID) -> None:
    with Session(engine) as session:
        request = tracker.get_request(session, request_id, for_update=True)
        for change in session.exec(select(RequestChange).where(RequestChange.request_id == request_id)).all():
            if change.status == ChangeStatus.failed:
                change.status, change.error_code, change.error_detail = ChangeStatus.pending, None, None
                session.add(change)
        request.error_code = request.error_detail = None
        request.announced_at = None  # its new end is a new result on the results topic
        tracker.move(session, request, RequestStatus.queued, Step.redriven, COMPONENT, attempts_before=request.attempts)
        session.commit()


def _describe(engine: Engine, message: dict[str, Any]) -> DeadLetter:
    is_apply = message.get("actor_name") == APPLY_ACTOR
    request_id = message.get("args", [None])[0] if is_apply else None
    reason = None if is_apply else "see the worker's log lines of this message"
    if request_id:
        with Session(engine) as session:
            try:
                request = tracker.get_request(session, uuid.UUID(request_id))
                reason = f"{request.error_code}: {request.error_detail}" if request.error_code else None
            except Exception:
                reason = "no such request"
    return DeadLetter(
        message_id=str(message.get("message_id")),
        request_id=request_id,
        actor=str(message.get("actor_name")),
        retries=int(message.get("options", {}).get("retries", 0)),
        reason=reason,
    )
