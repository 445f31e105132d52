"""The consume loop: one event at a time, an offset committed only once its event is decided.

Per message: oversize, not JSON or not the contract → dead-letter topic. Otherwise the API
call, as the consumer's own client, with ``Idempotency-Key`` = the event id (or
topic:partition:offset) so a message read twice makes one request. Accepted (2xx) or refused
(4xx) → committed; a refusal also goes to the dead-letter topic, and its result to the
results topic. No decision → tried again, nothing fetched or committed meanwhile. Writing to
Kafka is tried again too: nothing is committed before its dead letter or result is written.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata
from tenacity import Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential

from consumer import metrics
from consumer.api import ApiClient, Decision, Stopping
from consumer.contract import BadEvent, call_for, decode
from service.context import bound_request_id, parse_request_id
from service.settings import Settings

logger = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "rejected")
DLQ_VALUE_LIMIT = 64 * 1024  # an oversize value is cut to this in its dead letter
_HEADER_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


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
        api: ApiClient,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        self.api = api
        self.stop = stop
        self.counts = Counts()
        self.last_stats = time.monotonic()
        self.lanes = ThreadPoolExecutor(settings.consumer_concurrency, thread_name_prefix="lane")

    def run(self) -> None:
        logger.info("consuming %s as group %s", self.settings.kafka_topic, self.settings.kafka_group_id)
        try:
            while not self.stop.is_set():
                batches = self.consumer.poll(timeout_ms=500, max_records=self.settings.consumer_concurrency * 8)
                for records in batches.values():
                    if not self.decide(records):
                        return  # stopped: what was not committed is read again after a restart
                    self.commit(records[-1])  # refused: the partition moved, and its batch is read again
                self._stats()
        finally:
            self.lanes.shutdown(wait=True)

    def decide(self, records: list[Any]) -> bool:
        """Decide one partition's batch: events about different names at once, about one name in order.

        A change set, or a message that is not an event, is decided alone, after everything
        before it and before anything after it. False when stopped before the end.
        """
        for segment in _segments(records):
            lanes: dict[str, list[Any]] = {}
            for lane, record in segment:
                lanes.setdefault(lane, []).append(record)
            deciding = [self.lanes.submit(self._decide_lane, lane) for lane in lanes.values()]
            if not all(future.result() for future in deciding):
                return False
        return True

    def _decide_lane(self, records: list[Any]) -> bool:
        for record in records:
            if self.stop.is_set():
                return False
            try:
                self.handle(record)
            except Stopping:
                return False
        return True

    def handle(self, record: Any) -> None:
        headers = {key: value for key, value in (record.headers or [])}
        given = headers.get("request-id")
        request_id = parse_request_id(given.decode("latin-1") if isinstance(given, bytes) else None) or uuid.uuid4()
        with bound_request_id(str(request_id)):
            self._handle(record, headers, request_id)

    def _handle(self, record: Any, headers: dict[str, bytes], request_id: uuid.UUID) -> None:
        where = f"{record.topic}:{record.partition}:{record.offset}"
        limit = self.settings.consumer_max_message_bytes
        if record.value is not None and len(record.value) > limit:
            self.dead_letter(record, "oversize", f"{len(record.value)} bytes; the limit is {limit}", request_id)
            return
        try:
            event = decode(record.value)
        except BadEvent as exc:
            self.dead_letter(record, exc.reason, exc.detail, request_id)
            return
        key_header = headers.get("idempotency-key")
        idempotency_key = key_header.decode("latin-1") if key_header else (event.event_id or where)
        if not _HEADER_KEY.match(idempotency_key):
            reason = "the idempotency-key header is not 1 to 255 printable ASCII characters"
            self.dead_letter(record, "invalid_header", reason, request_id)
            return
        origin = {
            "X-Kafka-Topic": record.topic,
            "X-Kafka-Partition": str(record.partition),
            "X-Kafka-Offset": str(record.offset),
        }
        call = call_for(event)
        decision = self.api.send(call, request_id=request_id, idempotency_key=idempotency_key, origin=origin)
        if decision.status_code == 409 and decision.body.get("code") == "request_id_in_use":
            request_id = uuid.uuid4()  # the producer reused a request id: this event gets its own
            decision = self.api.send(call, request_id=request_id, idempotency_key=idempotency_key, origin=origin)
        self.counts.processed += 1
        metrics.EVENTS.labels("processed").inc()
        if decision.accepted:
            status = str(decision.body.get("status", ""))
            logger.info("event %s accepted as request %s (%s)", event.event_id, decision.body.get("request_id"), status)
            if status in TERMINAL and not decision.replayed:  # nothing to change: no worker will announce it
                self.result(event.event_id, decision, status)
            return
        code = str(decision.body.get("code", "rejected"))
        reason = "forbidden" if code == "zone_not_granted" else code
        self.dead_letter(record, reason, str(decision.body.get("detail", ""))[:1000], request_id, decision)
        self.result(event.event_id, decision, "rejected")

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
        self.produce(self.settings.kafka_dlq_topic, key=record.key, value=value, headers=headers)
        self.counts.dead_lettered += 1
        metrics.EVENTS.labels("dead_lettered").inc()
        logger.warning(
            "message %s dead-lettered: %s (%s)",
            f"{record.topic}:{record.partition}:{record.offset}",
            reason,
            detail[:200],
        )

    def result(self, event_id: str, decision: Decision, status: str) -> None:
        error = None
        if not decision.accepted:
            error = {"code": decision.body.get("code"), "detail": decision.body.get("detail")}
        message = result_message(
            event_id=event_id, request_id=decision.body.get("request_id"), status=status, error=error
        )
        self.produce(self.settings.kafka_results_topic, **message)

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
