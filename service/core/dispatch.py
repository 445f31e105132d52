"""Hand work to the workers: one Dramatiq message carrying only an id (a request's, a reconciliation's).

The API does not import worker code; it publishes to the actor by name. The broker is
built here for both sides so that the API and the workers agree on the queue and the
connection settings.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from service.core.context import current_client, current_request_id
from service.core.errors import DependencyUnavailable
from service.core.settings import Settings

logger = logging.getLogger(__name__)

APPLY_ACTOR = "apply_request"
RECONCILE_ACTOR = "reconcile_zone"

# pika reads these from the URL; without them a dead broker can hang a caller.
_CONNECTION_DEFAULTS = {
    "connection_attempts": "2",
    "retry_delay": "1",
    "socket_timeout": "5",
    "stack_timeout": "10",
    "blocked_connection_timeout": "30",
    "heartbeat": "60",
}


def broker_url(settings: Settings) -> str:
    parts = urlsplit(settings.rabbitmq_dsn)
    query = dict(parse_qsl(parts.query))
    for key, value in _CONNECTION_DEFAULTS.items():
        query.setdefault(key, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


def make_broker(settings: Settings) -> RabbitmqBroker:
    """A RabbitMQ broker with publisher confirms: an enqueue returns only once RabbitMQ has the message."""
    return RabbitmqBroker(url=broker_url(settings), confirm_delivery=True)


class Dispatcher:
    def __init__(self, broker: dramatiq.Broker, queue_name: str) -> None:
        self.broker = broker
        self.queue_name = queue_name

    def enqueue_apply(self, request_id: uuid.UUID) -> None:
        self._enqueue(APPLY_ACTOR, (str(request_id),), request_id=str(request_id))

    def enqueue_reconcile(self, report_id: int) -> None:
        """Reconcile as the report ``report_id`` says; its log lines carry the current request id (or a new one)."""
        self._enqueue(RECONCILE_ACTOR, (report_id,), request_id=current_request_id() or str(uuid.uuid4()))

    def enqueue_call(self, actor_name: str, args: tuple[str | int, ...]) -> None:
        """Call ``actor_name`` again with ``args`` (a re-driven dead letter of another actor)."""
        self._enqueue(actor_name, args, request_id=current_request_id() or str(uuid.uuid4()))

    def _enqueue(self, actor_name: str, args: tuple[str | int, ...], *, request_id: str) -> None:
        message: dramatiq.Message[None] = dramatiq.Message(
            queue_name=self.queue_name,
            actor_name=actor_name,
            args=args,
            kwargs={},
            options={"request_id": request_id, "client": current_client()},
        )
        try:
            self.broker.enqueue(message)
        except Exception as exc:  # pika raises many unrelated types; all mean "not delivered"
            raise DependencyUnavailable(
                f"the message broker did not take the message: {type(exc).__name__}", code="broker_unavailable"
            ) from exc
