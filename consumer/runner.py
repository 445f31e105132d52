"""The consume loop: one event at a time, an offset committed only once its event is decided.

Per message: oversize, not JSON or not the contract → dead-letter topic. Otherwise the API
call, as the consumer's own client, with ``Idempotency-Key`` = the event id (or
topic:partition:offset) so a message read twice makes one request. Accepted (2xx) or refused
(4xx) → committed; a refusal also goes to the dead-letter topic, and its result to the
results topic. No decision → tried again, nothing fetched or committed meanwhile.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from consumer.api import ApiClient, Decision, Stopping
from consumer.contract import BadEvent, call_for, decode
from service.context import bound_request_id, parse_request_id
from service.settings import Settings

logger = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "rejected")


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

    def run(self) -> None:
        logger.info("consuming %s as group %s", self.settings.kafka_topic, self.settings.kafka_group_id)
        while not self.stop.is_set():
            batches = self.consumer.poll(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    if self.stop.is_set():
                        return  # not committed: read again after a restart
                    try:
                        self.handle(record)
                    except Stopping:
                        return
                    self.commit(record)
            self._stats()

    def handle(self, record: Any) -> None:
        headers = {key: value for key, value in (record.headers or [])}
        given = headers.get("request-id")
        request_id = parse_request_id(given.decode("latin-1") if isinstance(given, bytes) else None) or uuid.uuid4()
        with bound_request_id(str(request_id)):
            self._handle(record, headers, request_id)

    def _handle(self, record: Any, headers: dict[str, bytes], request_id: uuid.UUID) -> None:
        where = f"{record.topic}:{record.partition}:{record.offset}"
        if record.value is not None and len(record.value) > self.settings.consumer_max_message_bytes:
            self.dead_letter(
                record,
                "oversize",
                f"{len(record.value)} bytes; the limit is {self.settings.consumer_max_message_bytes}",
                request_id,
            )
            return
        try:
            event = decode(record.value)
        except BadEvent as exc:
            self.dead_letter(record, exc.reason, exc.detail, request_id)
            return
        key_header = headers.get("idempotency-key")
        idempotency_key = key_header.decode("utf-8", "replace") if key_header else event.event_id or where
        origin = {
            "X-Kafka-Topic": record.topic,
            "X-Kafka-Partition": str(record.partition),
            "X-Kafka-Offset": str(record.offset),
        }
        decision = self.api.send(call_for(event), request_id=request_id, idempotency_key=idempotency_key, origin=origin)
        if decision.status_code == 409 and decision.body.get("code") == "request_id_in_use":
            request_id = uuid.uuid4()  # the producer reused a request id: this event gets its own
            decision = self.api.send(
                call_for(event), request_id=request_id, idempotency_key=idempotency_key, origin=origin
            )
        self.counts.processed += 1
        if decision.accepted:
            status = str(decision.body.get("status", ""))
            logger.info("event %s accepted as request %s (%s)", event.event_id, decision.body.get("request_id"), status)
            if status in TERMINAL:  # nothing to change: no worker will announce it
                self.result(event.event_id, decision, status)
            return
        reason = "forbidden" if decision.status_code in (401, 403) else str(decision.body.get("code", "rejected"))
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
        self.producer.send(self.settings.kafka_dlq_topic, key=record.key, value=record.value, headers=headers).get(
            timeout=self.settings.kafka_timeout_s
        )
        self.counts.dead_lettered += 1
        logger.warning(
            "message %s:%s:%s dead-lettered: %s (%s)",
            record.topic,
            record.partition,
            record.offset,
            reason,
            detail[:200],
        )

    def result(self, event_id: str, decision: Decision, status: str) -> None:
        error = None
        if not decision.accepted:
            error = {"code": decision.body.get("code"), "detail": decision.body.get("detail")}
        publish_result(
            self.producer,
            self.settings,
            event_id=event_id,
            request_id=decision.body.get("request_id"),
            status=status,
            error=error,
        )

    def commit(self, record: Any) -> None:
        partition = TopicPartition(record.topic, record.partition)
        self.consumer.commit({partition: OffsetAndMetadata(record.offset + 1, "", -1)})

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
        logger.info(
            "consumer: %d processed, %d dead-lettered, %d retried, lag %d",
            self.counts.processed,
            self.counts.dead_lettered,
            self.api.retried,
            lag,
            extra={
                "processed": self.counts.processed,
                "dead_lettered": self.counts.dead_lettered,
                "retried": self.api.retried,
                "lag": lag,
            },
        )


def publish_result(
    producer: KafkaProducer,
    settings: Settings,
    *,
    event_id: str | None,
    request_id: Any,
    status: str,
    error: dict[str, Any] | None,
) -> None:
    """One event on the results topic, keyed by the event id, so event-driven clients need not poll."""
    value = {
        "request_id": str(request_id) if request_id else None,
        "event_id": event_id,
        "status": status,
        "error": error,
    }
    producer.send(
        settings.kafka_results_topic,
        key=(event_id or "").encode() or None,
        value=json.dumps(value).encode(),
    ).get(timeout=settings.kafka_timeout_s)
