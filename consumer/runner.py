"""The consume loop: a poll's events decided by the API in few calls, an offset committed only
once its event is decided.

Per message: oversize, not JSON or not the contract → dead-letter topic. Otherwise the API
call (one write of a batch call, ``POST /api/v2/requests:batch``), as the consumer's own
client, with ``Idempotency-Key`` = the event id (or topic:partition:offset) so a message read
twice makes one request. Accepted (2xx) or refused
(4xx) → committed; a refusal also goes to the dead-letter topic, and its result to the
results topic. No decision → tried again, nothing fetched or committed meanwhile. Writing to
Kafka is tried again too: nothing is committed before its dead letter or result is written.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata
from tenacity import Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential

from consumer import metrics
from consumer.api import ApiCaller, Decision, Stopping
from consumer.contract import BadEvent, Call, Event, call_for, decode, write_for
from db.schemas import IDEMPOTENCY_KEY
from service.core import kafka_clients
from service.core.context import bound_request_id, parse_request_id
from service.core.settings import Settings

logger = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "rejected")
DLQ_VALUE_LIMIT = 64 * 1024  # an oversize value is cut to this in its dead letter


@dataclass
class Ready:
    """An event that passed the consumer's own checks, with what its call to the API carries."""

    record: Any
    event: Event
    request_id: uuid.UUID
    idempotency_key: str
    acting: str | None = None  # the client its topic is bound to; None: the consumer's own

    @property
    def origin(self) -> dict[str, str]:
        return {
            "X-Kafka-Topic": self.record.topic,
            "X-Kafka-Partition": str(self.record.partition),
            "X-Kafka-Offset": str(self.record.offset),
        }

    @property
    def call(self) -> Call:
        return call_for(self.event)

    def write(self) -> dict[str, Any]:
        """The event as one write of a batch: its call, key, request id and origin."""
        kafka = {"topic": self.record.topic, "partition": self.record.partition, "offset": self.record.offset}
        return {
            **write_for(self.event),
            "idempotency_key": self.idempotency_key,
            "request_id": str(self.request_id),
            "kafka": kafka,
        }


@dataclass
class Counts:
    processed: int = 0
    dead_lettered: int = 0
    started: float = field(default_factory=time.monotonic)


class Runner:
    def __init__(
        self,
        settings: Settings,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        api: ApiCaller,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        self.api = api
        self.stop = stop
        self.counts = Counts()
        self.last_stats = time.monotonic()

    def run(self) -> None:
        bound = self.settings.kafka_topic_clients
        if bound:
            for topic, client in sorted(bound.items()):
                logger.info(
                    "consuming %s as group %s: its events act as client %s", topic, self.settings.kafka_group_id, client
                )
        else:
            logger.warning(
                "consuming %s as group %s: its events act as the consumer's own client; bind topics to their "
                "producers' clients (HOSTMASTER_KAFKA_TOPIC_CLIENTS) so that each acts with its own rights",
                self.settings.kafka_topic,
                self.settings.kafka_group_id,
            )
        while not self.stop.is_set():
            batches = self.consumer.poll(timeout_ms=500, max_records=self.settings.consumer_batch)
            for records in batches.values():
                if not self.decide(records):
                    return  # stopped: what was not committed is read again after a restart
                self.commit(records[-1])  # refused: the partition moved, and its batch is read again
            self._stats()

    def decide(self, records: list[Any]) -> bool:
        """Decide one partition's batch: events about different names together, about one name in order.

        Each run of events is cut into rounds — the first event of every name, then the second, …
        — and each round goes to the API in one call (``POST /api/v2/requests:batch``); a change
        set, or a message that is not an event, is decided alone, after everything before it and
        before anything after it. False when stopped before the end.
        """
        for segment in _segments(records):
            if len(segment) == 1 and segment[0][0] == "":
                if not self._decide_alone(segment[0][1]):
                    return False
                continue
            lanes: dict[str, list[Any]] = {}
            for lane, record in segment:
                lanes.setdefault(lane, []).append(record)
            for depth in range(max(len(lane) for lane in lanes.values())):
                round_ = [lane[depth] for lane in lanes.values() if depth < len(lane)]
                for start in range(0, len(round_), self.settings.consumer_batch):
                    if not self._decide_round(round_[start : start + self.settings.consumer_batch]):
                        return False
        return True

    def _decide_alone(self, record: Any) -> bool:
        if self.stop.is_set():
            return False
        try:
            self.handle(record)
        except Stopping:
            return False
        return True

    def _decide_round(self, records: list[Any]) -> bool:
        """Events about different names, decided in one call to the API (one by one when the batch is 1)."""
        if self.stop.is_set():
            return False
        if self.settings.consumer_batch == 1:
            return all(self._decide_alone(record) for record in records)
        prepared = [ready for record in records if (ready := self._prepare(record)) is not None]
        if not prepared:
            return True
        writes = [ready.write() for ready in prepared]
        try:
            acting = kafka_clients.client_of(self.settings, records[0].topic)  # one partition: one topic
            decisions = self.api.send_batch(writes, request_id=uuid.uuid4(), on_behalf_of=acting)
            for ready, decision in zip(prepared, decisions, strict=True):
                with bound_request_id(str(ready.request_id)):
                    if decision.status_code == 409 and decision.body.get("code") == "request_id_in_use":
                        decision = self._send_again(ready)
                    self._conclude(ready, decision)
        except Stopping:
            return False
        return True

    def handle(self, record: Any) -> None:
        """Decide one message through its single REST call."""
        ready = self._prepare(record)
        if ready is None:
            return
        with bound_request_id(str(ready.request_id)):
            decision = self.api.send(
                ready.call,
                request_id=ready.request_id,
                idempotency_key=ready.idempotency_key,
                origin=ready.origin,
                on_behalf_of=ready.acting,
            )
            if decision.status_code == 409 and decision.body.get("code") == "request_id_in_use":
                decision = self._send_again(ready)
            self._conclude(ready, decision)

    def _send_again(self, ready: Ready) -> Decision:
        """The producer reused a request id: this event gets its own."""
        ready.request_id = uuid.uuid4()
        return self.api.send(
            ready.call,
            request_id=ready.request_id,
            idempotency_key=ready.idempotency_key,
            origin=ready.origin,
            on_behalf_of=ready.acting,
        )

    def _prepare(self, record: Any) -> Ready | None:
        """The event of ``record`` with what its call carries; None when it was dead-lettered here."""
        headers = {key: value for key, value in (record.headers or [])}
        given = headers.get("request-id")
        request_id = parse_request_id(given.decode("latin-1") if isinstance(given, bytes) else None) or uuid.uuid4()
        with bound_request_id(str(request_id)):
            where = f"{record.topic}:{record.partition}:{record.offset}"
            limit = self.settings.consumer_max_message_bytes
            if record.value is not None and len(record.value) > limit:
                self.dead_letter(record, "oversize", f"{len(record.value)} bytes; the limit is {limit}", request_id)
                return None
            try:
                event = decode(record.value)
            except BadEvent as exc:
                self.dead_letter(record, exc.reason, exc.detail, request_id)
                return None
            key_header = headers.get("idempotency-key")
            idempotency_key = key_header.decode("latin-1") if key_header else (event.event_id or where)
            if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
                reason = "the idempotency-key header is not 1 to 255 printable ASCII characters"
                self.dead_letter(record, "invalid_header", reason, request_id)
                return None
        return Ready(record, event, request_id, idempotency_key, kafka_clients.client_of(self.settings, record.topic))

    def _conclude(self, ready: Ready, decision: Decision) -> None:
        """Act on the API's decision: a result when it ended at once, a dead letter and a result when refused."""
        event = ready.event
        self.counts.processed += 1
        metrics.EVENTS.labels("processed").inc()
        if decision.accepted:
            status = str(decision.body.get("status", ""))
            logger.info("event %s accepted as request %s (%s)", event.event_id, decision.body.get("request_id"), status)
            if status in TERMINAL and not decision.replayed:  # nothing to change: no worker will announce it
                self.result(ready.record.topic, event.event_id, decision, status)
            return
        code = str(decision.body.get("code", "rejected"))
        reason = "forbidden" if code == "zone_not_granted" else code
        detail = str(decision.body.get("detail", ""))[:1000]
        self.dead_letter(ready.record, reason, detail, ready.request_id, decision)
        self.result(ready.record.topic, event.event_id, decision, "rejected")

    def dead_letter(
        self, record: Any, reason: str, detail: str, request_id: uuid.UUID, decision: Decision | None = None
    ) -> None:
        """The original key, value and headers, and why, on the dead-letter topic (written before the commit)."""
        headers = [
            *(record.headers or []),
            ("x-dlq-reason", reason.encode()),
            ("x-dlq-detail", detail.encode("utf-8", "replace")),
            ("x-dlq-status", str(decision.status_code if decision else 0).encode()),
            ("x-original-topic", record.topic.encode()),
            ("x-original-partition", str(record.partition).encode()),
            ("x-original-offset", str(record.offset).encode()),
            ("x-request-id", str(request_id).encode()),
        ]
        value = record.value
        if value is not None and len(value) > DLQ_VALUE_LIMIT:  # the copy must fit where the original did not
            headers.append(("x-dlq-original-size", str(len(value)).encode()))
            value = value[:DLQ_VALUE_LIMIT]
        self.produce(
            kafka_clients.dead_letters_topic(self.settings, record.topic), key=record.key, value=value, headers=headers
        )
        self.counts.dead_lettered += 1
        metrics.EVENTS.labels("dead_lettered").inc()
        logger.warning(
            "message %s dead-lettered: %s (%s)",
            f"{record.topic}:{record.partition}:{record.offset}",
            reason,
            detail[:200],
        )

    def result(self, topic: str, event_id: str, decision: Decision, status: str) -> None:
        """The result of an event of ``topic``, on that topic's results topic."""
        error = None
        if not decision.accepted:
            error = {"code": decision.body.get("code"), "detail": decision.body.get("detail")}
        message = result_message(
            event_id=event_id, request_id=decision.body.get("request_id"), status=status, error=error
        )
        self.produce(kafka_clients.results_topic(self.settings, topic), **message)

    def produce(self, topic: str, **message: Any) -> None:
        """Write one message (acks=all), trying again while Kafka fails; gives up only to stop."""
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(KafkaError),
                wait=wait_exponential(multiplier=0.2, max=self.settings.consumer_retry_max_s),
                stop=stop_when_event_set(self.stop),
                sleep=self._sleep,
                reraise=True,
            ):
                with attempt:
                    self.producer.send(topic, **message).get(timeout=self.settings.kafka_timeout_s)
        except KafkaError as exc:
            raise Stopping(f"stopped while {topic} could not be written") from exc

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)  # a stop request cuts the wait short

    def commit(self, record: Any) -> bool:
        """Commit past ``record``; False when the group moved the partition (its batch is read again)."""
        partition = TopicPartition(record.topic, record.partition)
        try:
            self.consumer.commit({partition: OffsetAndMetadata(record.offset + 1, "", -1)})
        except (CommitFailedError, RebalanceInProgressError) as exc:
            logger.warning(
                "commit past %s:%s refused (%s); reading again", record.topic, record.offset, type(exc).__name__
            )
            return False
        return True

    def _stats(self) -> None:
        now = time.monotonic()
        if now - self.last_stats < self.settings.consumer_stats_interval_s:
            return
        self.last_stats = now
        lag = 0
        for partition in self.consumer.assignment():
            high = self.consumer.highwater(partition)
            position = self.consumer.position(partition) if high is not None else None
            if high is not None and position is not None:
                lag += max(0, high - position)
                metrics.LAG.labels(partition.topic, str(partition.partition)).set(max(0, high - position))
        counts = {
            "processed": self.counts.processed,
            "dead_lettered": self.counts.dead_lettered,
            "retried": self.api.retried,
            "lag": lag,
        }
        logger.info("consumer: %d processed, %d dead-lettered, %d retried, lag %d", *counts.values(), extra=counts)


def result_message(
    *, event_id: str | None, request_id: Any, status: str, error: dict[str, Any] | None
) -> dict[str, Any]:
    """One event for the results topic, keyed by the event id, so event-driven clients need not poll."""
    value = {
        "request_id": str(request_id) if request_id else None,
        "event_id": event_id,
        "status": status,
        "error": error,
    }
    return {"key": (event_id or "").encode() or None, "value": json.dumps(value).encode()}


def _segments(records: list[Any]) -> Iterator[list[tuple[str, Any]]]:
    """``records`` cut into runs that may be decided at once, each record with its lane (a name)."""
    run: list[tuple[str, Any]] = []
    for record in records:
        lane = _lane(record)
        if lane is None:  # decided alone, in its place
            if run:
                yield run
                run = []
            yield [("", record)]
        else:
            run.append((lane, record))
    if run:
        yield run


def _lane(record: Any) -> str | None:
    """The owner name an event is about, lower case; None for a change set or a message that is not one."""
    try:
        event = decode(record.value)
    except BadEvent:
        return None
    if event.operation == "changeset":
        return None
    name = event.name if event.operation != "record.create" else (event.body or {}).get("name")
    return str(name).lower().rstrip(".") if name else None
