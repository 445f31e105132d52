"""The Kafka entry point on a real Kafka-protocol broker: events become requests, once each.

The consumer runs as `python -m consumer` against an API process of its own (same database,
queue and worker as the rest), so that the API can be stopped and started here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from service.core.dispatch import Dispatcher, make_broker
from service.core.settings import load_settings
from tests.integration.dns_helpers import served, texts
from tests.support import (
    OVERRIDE_ZONE,
    ZONE,
    Bind,
    Kafka,
    Process,
    free_port,
    make_client,
    start_api,
    start_process,
    unique_label,
    wait_until,
)

pytestmark = pytest.mark.integration


class Consumer:
    """The consumer process and the API it calls, each of which a test may stop and start."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.api = start_api("api-kafka", env, self.port)
        self.process = self.start()

    def start(self) -> Process:
        env = {**self.env, "HOSTMASTER_API_URL": f"http://127.0.0.1:{self.port}"}
        self.process = start_process(f"consumer-{uuid.uuid4().hex[:6]}", ["-m", "consumer"], env)
        return self.process

    def stop_api(self) -> None:
        self.api.stop()

    def start_api(self) -> None:
        self.api = start_api("api-kafka", self.env, self.port)

    def stop(self) -> None:
        self.process.stop()
        self.api.stop()


@pytest.fixture(scope="module")
def consumer(stack: httpx.Client, stack_env: dict[str, str], worker: Process) -> Iterator[Consumer]:
    key = make_client(stack_env, f"kafka-{unique_label('c')}", ZONE, scopes=("write",))
    env = {
        **stack_env,
        "HOSTMASTER_CONSUMER_API_KEY": key,
        "HOSTMASTER_KAFKA_GROUP_ID": f"hostmaster-{uuid.uuid4().hex[:6]}",
        "HOSTMASTER_CONSUMER_STATS_INTERVAL_S": "2",
        "HOSTMASTER_CONSUMER_RETRY_MAX_S": "1",
        "HOSTMASTER_METRICS_PORT": str(free_port()),
    }
    running = Consumer(env)
    yield running
    running.stop()


def event(name: str, value: str = "kafka", event_id: str | None = None) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "event_id": event_id or f"evt-{uuid.uuid4()}",
        "operation": "record.create",
        "body": {"name": name, "type": "TXT", "values": [value]},
    }


def send(producer: KafkaProducer, kafka: Kafka, value: bytes | dict[str, Any], **headers: str) -> int:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    sent = producer.send(kafka.topic, value=raw, headers=[(k, v.encode()) for k, v in headers.items()])
    return int(sent.get(timeout=10).offset)


def read(kafka: Kafka, topic: str, want: Any, *, timeout: float = 120) -> list[Any]:
    """Records of ``topic`` (from the start) until ``want(records)`` holds."""
    return read_many(kafka, [topic], want, timeout=timeout)


def results_for(kafka: Kafka, event_ids: set[str], *, timeout: float = 150) -> dict[str, list[dict[str, Any]]]:
    def complete(records: list[Any]) -> bool:
        return event_ids <= {json.loads(record.value)["event_id"] for record in records}

    by_event: dict[str, list[dict[str, Any]]] = {}
    for record in read(kafka, kafka.results, complete, timeout=timeout):
        value = json.loads(record.value)
        if value["event_id"] in event_ids:
            by_event.setdefault(value["event_id"], []).append(value)
    return by_event


def committed(kafka: Kafka, consumer: Consumer) -> int:
    probe = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap, group_id=consumer.env["HOSTMASTER_KAFKA_GROUP_ID"], enable_auto_commit=False
    )
    try:
        return int(probe.committed(TopicPartition(kafka.topic, 0)) or 0)
    finally:
        probe.close()


def test_200_events_become_200_requests_served_by_bind_with_results(
    consumer: Consumer, producer: KafkaProducer, kafka: Kafka, stack: httpx.Client, bind: Bind
) -> None:
    parent = f"{unique_label('k')}.{ZONE}"
    events = [event(f"e{index}.{parent}", f"value {index}") for index in range(200)]
    last = max(send(producer, kafka, item) for item in events)

    results = results_for(kafka, {item["event_id"] for item in events})

    assert {result[-1]["status"] for result in results.values()} == {"succeeded"}
    for index in range(0, 200, 20):
        assert texts(served(bind, f"e{index}.{parent}", "TXT")) == [f'"value {index}"']
    sample = results[events[7]["event_id"]][-1]["request_id"]
    tracked = stack.get(f"/api/v1/requests/{sample}").json()
    assert tracked["source"] == "kafka"
    assert tracked["events"][0]["detail"]["topic"] == kafka.topic
    wait_until(lambda: committed(kafka, consumer) > last, timeout=30, what="the offsets to be committed")


def test_the_same_event_twice_is_one_request_and_one_dns_change(
    consumer: Consumer, producer: KafkaProducer, kafka: Kafka, stack: httpx.Client, bind: Bind
) -> None:
    name = f"{unique_label('twice')}.{ZONE}"
    once = event(name, "only once")
    send(producer, kafka, once)
    second = send(producer, kafka, once)
    wait_until(lambda: committed(kafka, consumer) > second, timeout=60, what="both deliveries to be decided")

    results = results_for(kafka, {once["event_id"]})

    # Applied twice, the second would be a new request refused with rrset_exists: a second result.
    assert [(result["status"], result["request_id"]) for result in results[once["event_id"]]] == [
        ("succeeded", results[once["event_id"]][0]["request_id"])
    ]
    assert texts(served(bind, name, "TXT")) == ['"only once"']
    assert stack.get(f"/api/v1/records/{name}/TXT").json()["version"] == 1


def test_a_second_message_for_an_ended_request_publishes_no_second_result(
    consumer: Consumer,
    producer: KafkaProducer,
    kafka: Kafka,
    stack_env: dict[str, str],
    worker: Process,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    once = event(f"{unique_label('again')}.{ZONE}", "announced once")
    send(producer, kafka, once)
    first = results_for(kafka, {once["event_id"]})[once["event_id"]]
    request_id = first[0]["request_id"]

    # What a replayed event, the recovery job or an operator may do: queue the ended request again.
    for name, value in stack_env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    broker = make_broker(settings)
    try:
        Dispatcher(broker, settings.queue_name).enqueue_apply(uuid.UUID(request_id))
    finally:
        broker.close()
    wait_until(
        lambda: any(
            line.get("request_id") == request_id and "already published" in line.get("message", "")
            for line in worker.log_lines()
        ),
        timeout=30,
        what="the worker to take the second message",
    )
    marker = event(f"{unique_label('after')}.{ZONE}", "after")  # a later result: the topic has moved on
    send(producer, kafka, marker)
    results = results_for(kafka, {once["event_id"], marker["event_id"]})

    assert [result["status"] for result in results[once["event_id"]]] == ["succeeded"]


def test_poison_messages_go_to_the_dead_letter_topic_and_the_rest_goes_on(
    consumer: Consumer, producer: KafkaProducer, kafka: Kafka, bind: Bind
) -> None:
    good = event(f"{unique_label('good')}.{ZONE}", "after poison")
    marker = uuid.uuid4().hex
    poison: dict[str, bytes | dict[str, Any]] = {
        "invalid_json": b"{not json " + marker.encode(),
        "schema_violation": {"schema_version": 1, "event_id": f"p-{marker}", "operation": "record.create"},
        "invalid": event("www.nowhere-registered.example", marker, event_id=f"q-{marker}"),
        "forbidden": event(f"www.{OVERRIDE_ZONE}", marker, event_id=f"f-{marker}"),  # a zone not granted
    }
    for value in poison.values():
        send(producer, kafka, value, **{"request-id": str(uuid.uuid4())})
    send(producer, kafka, good)

    results = results_for(kafka, {good["event_id"]})

    assert results[good["event_id"]][-1]["status"] == "succeeded"

    def all_dead(records: list[Any]) -> bool:
        return len([record for record in records if marker.encode() in (record.value or b"")]) >= len(poison)

    dead = [record for record in read(kafka, kafka.dlq, all_dead, timeout=60) if marker.encode() in record.value]
    reasons = {dict(record.headers)["x-dlq-reason"].decode() for record in dead}
    assert reasons == set(poison)
    for record in dead:
        headers = dict(record.headers)
        assert headers["x-original-topic"].decode() == kafka.topic
        assert "request-id" in headers  # the original headers travel with it
        assert headers["x-dlq-detail"]
    metrics = httpx.get(f"http://127.0.0.1:{consumer.env['HOSTMASTER_METRICS_PORT']}/metrics", timeout=5).text
    counted = {
        outcome: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        for outcome in ("processed", "dead_lettered")
        if line.startswith(f'hostmaster_consumer_events_total{{outcome="{outcome}"}}')
    }
    assert counted["dead_lettered"] >= len(poison)
    assert counted["processed"] >= 1
    assert "hostmaster_consumer_lag" in metrics


def test_while_the_api_is_down_nothing_is_committed_or_lost(
    consumer: Consumer, producer: KafkaProducer, kafka: Kafka, bind: Bind
) -> None:
    consumer.stop_api()
    before = committed(kafka, consumer)
    events = [event(f"down{index}.{unique_label('api')}.{ZONE}") for index in range(5)]
    for item in events:
        send(producer, kafka, item)
    time.sleep(4)
    assert committed(kafka, consumer) == before

    consumer.start_api()
    results = results_for(kafka, {item["event_id"] for item in events})

    assert {result[-1]["status"] for result in results.values()} == {"succeeded"}
    assert committed(kafka, consumer) > before


def test_a_consumer_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
    consumer: Consumer, producer: KafkaProducer, kafka: Kafka, stack: httpx.Client
) -> None:
    parent = f"{unique_label('kill')}.{ZONE}"
    events = [event(f"k{index}.{parent}", f"v{index}") for index in range(600)]  # enough to be mid-stream
    sending = [producer.send(kafka.topic, value=json.dumps(item).encode()) for item in events]
    producer.flush(timeout=30)
    offsets = [int(future.get(timeout=10).offset) for future in sending]
    wait_until(
        lambda: committed(kafka, consumer) > offsets[5], timeout=60, what="the stream to be under way", interval=0.02
    )
    os.kill(consumer.process.popen.pid, signal.SIGKILL)
    consumer.process.popen.wait(timeout=10)
    assert committed(kafka, consumer) <= offsets[-1], "killed after the end: not mid-stream"
    consumer.start()
    wait_until(lambda: committed(kafka, consumer) > offsets[-1], timeout=180, what="every event to be decided")

    results = results_for(kafka, {item["event_id"] for item in events}, timeout=60)

    for item in events:  # one request each, succeeded: none lost, none applied a second time
        assert {(result["status"], result["request_id"]) for result in results[item["event_id"]]} == {
            ("succeeded", results[item["event_id"]][0]["request_id"])
        }
    for index in range(0, 600, 60):
        assert stack.get(f"/api/v1/records/k{index}.{parent}/TXT").json()["version"] == 1


def test_the_consumer_logs_its_counts_and_stops_cleanly_on_sigterm(consumer: Consumer) -> None:
    wait_until(
        lambda: any(line.get("message", "").startswith("consumer:") for line in consumer.process.log_lines()),
        timeout=15,
        what="a stats line",
    )
    stats = next(line for line in consumer.process.log_lines() if line.get("message", "").startswith("consumer:"))
    assert {"processed", "dead_lettered", "retried", "lag"} <= stats.keys()

    consumer.process.popen.send_signal(signal.SIGTERM)
    assert consumer.process.popen.wait(timeout=30) == 0
    assert any(line.get("message") == "consumer stopped" for line in consumer.process.log_lines())
    consumer.start()


# Hostile messages: any value, key and headers a producer can write. An idempotency-key header
# is always one the consumer must refuse (a valid one would make two messages one request).
_KEY_BYTES = st.one_of(
    st.builds(lambda key: key.encode() + b"\n", st.text("abc123", min_size=1, max_size=20)),  # `$` let it by
    st.binary(max_size=300).filter(lambda raw: not re.fullmatch(rb"[\x21-\x7e]{1,255}", raw)),
)
_HEADER_NAMES = st.text(st.characters(codec="ascii"), min_size=1, max_size=20).filter(
    lambda name: name.lower() not in ("idempotency-key", "x-hostile")
)
_VALUES = st.one_of(
    st.binary(max_size=200),
    st.fixed_dictionaries(
        {"label": st.text(max_size=40), "values": st.lists(st.text(max_size=40), max_size=3)}
    ),  # an event whose name and values are anything
)
_HOSTILE = st.tuples(
    _VALUES,
    st.one_of(st.none(), st.binary(max_size=50)),
    st.lists(st.tuples(_HEADER_NAMES, st.binary(max_size=100)), max_size=4),
    st.one_of(st.none(), _KEY_BYTES),
)


@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.generate],  # each example takes seconds on the real broker: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(hostile=st.lists(_HOSTILE, min_size=10, max_size=20))
def test_no_message_stalls_the_consumer(
    consumer: Consumer, producer: KafkaProducer, kafka: Kafka, hostile: list[Any]
) -> None:
    """Random values, keys and headers between valid events: within a bound, every valid event
    succeeds and every other message is dead-lettered or answered with a result."""
    marker = uuid.uuid4().hex
    parent = f"{unique_label('calm')}.{ZONE}"
    valid: list[str] = []
    event_ids: dict[str, str] = {}  # hostile tag → its event id, when its value is an event
    for index, (value, key, headers, idempotency_key) in enumerate(hostile):
        tag = f"{marker}-{index}"
        raw = value
        if isinstance(value, dict):
            event_ids[tag] = f"h-{tag}"
            body = {"name": f"{value['label']}.{ZONE}", "type": "TXT", "values": value["values"]}
            raw = json.dumps(
                {"schema_version": 1, "event_id": event_ids[tag], "operation": "record.create", "body": body}
            ).encode()
        sent_headers = [*headers, ("x-hostile", tag.encode())]
        if idempotency_key is not None:
            sent_headers.append(("idempotency-key", idempotency_key))
        producer.send(kafka.topic, value=raw, key=key, headers=sent_headers).get(timeout=10)
        good = event(f"v{index}.{parent}", f"calm {index}")
        valid.append(good["event_id"])
        send(producer, kafka, good)

    def decided(records: list[Any]) -> bool:
        dead, ended = _seen(records, marker, kafka.dlq)
        return set(valid) <= set(ended) and all(
            tag in dead or event_ids.get(tag) in ended for tag in (f"{marker}-{i}" for i in range(len(hostile)))
        )

    records = read_many(kafka, [kafka.results, kafka.dlq], decided, timeout=90)

    _, ended = _seen(records, marker, kafka.dlq)
    assert {ended[event_id] for event_id in valid} == {"succeeded"}, ended


def _seen(records: list[Any], marker: str, dlq: str) -> tuple[set[str], dict[str, str]]:
    """The tags of the dead letters of this example, and every result's last status by event id."""
    dead: set[str] = set()
    ended: dict[str, str] = {}
    for record in records:
        if record.topic == dlq:
            tag = dict(record.headers or []).get("x-hostile", b"").decode(errors="replace")
            if tag.startswith(marker):
                dead.add(tag)
        else:
            value = json.loads(record.value)
            ended[value["event_id"]] = value["status"]
    return dead, ended


def read_many(kafka: Kafka, topics: list[str], want: Any, *, timeout: float) -> list[Any]:
    """Records of ``topics`` (from the start) until ``want(records)`` holds."""
    reader = KafkaConsumer(
        *topics,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
    )
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=1000).values():
                seen.extend(records)
            if want(seen):
                return seen
    finally:
        reader.close()
    raise AssertionError(f"timed out reading {', '.join(topics)}: {len(seen)} records")
