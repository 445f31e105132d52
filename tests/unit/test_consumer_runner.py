"""How the consumer decides about each message, with stand-ins for Kafka and an HTTP transport.

The integration tests run the real consumer on a real broker; these pin the decisions that
are hard to provoke there: which answers are retried, what is dead-lettered and how, and that
a Kafka failure while writing a dead letter is waited out, never skipped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from kafka.errors import KafkaTimeoutError

from consumer.api import ApiCaller
from consumer.runner import DLQ_VALUE_LIMIT, Runner, _segments
from service.core.settings import Settings


@dataclass
class Record:
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str = "dns.requests"
    partition: int = 0
    offset: int = 7
    key: bytes | None = b"k"


class Sent:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def get(self, timeout: float) -> None:
        if self.fail:
            raise KafkaTimeoutError("broker away")


class Producer:
    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def send(self, topic: str, **message: Any) -> Sent:
        if self.failures:
            self.failures -= 1
            return Sent(fail=True)
        self.messages.append((topic, message))
        return Sent(fail=False)


def runner(answer: Callable[[httpx.Request], httpx.Response], producer: Producer | None = None) -> Runner:
    settings = Settings(consumer_retry_max_s=0.01, kafka_timeout_s=1)
    stop = threading.Event()
    api = ApiCaller("http://api.test", "hm_key", timeout_s=1, retry_max_s=0.01, stop=stop)
    api.http = httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(answer))
    return Runner(settings, consumer=None, producer=producer or Producer(), api=api, stop=stop)


def event(**extra: Any) -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "event_id": "e-1",
            "operation": "record.create",
            "body": {"name": "a.example.test", "type": "A", "values": ["192.0.2.1"]},
            **extra,
        }
    ).encode()


def problem(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "detail": f"because {code}", "request_id": None})


def test_an_accepted_event_sends_its_key_and_origin_and_writes_nothing_to_kafka() -> None:
    seen: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"request_id": "r", "status": "queued"})

    producer = Producer()
    runner(api, producer).handle(Record(event()))

    assert seen[0].headers["idempotency-key"] == "e-1"
    assert (seen[0].headers["x-kafka-topic"], seen[0].headers["x-kafka-offset"]) == ("dns.requests", "7")
    assert producer.messages == []


@pytest.mark.parametrize(
    "first",
    [httpx.Response(503), problem(401, "bad_key"), problem(403, "scope_missing"), problem(409, "concurrent_change")],
)
def test_answers_that_decide_nothing_are_tried_again(first: httpx.Response) -> None:
    answers = [first, httpx.Response(202, json={"request_id": "r", "status": "queued"})]
    producer = Producer()

    runner(lambda request: answers.pop(0), producer).handle(Record(event()))

    assert answers == []
    assert producer.messages == []


def test_a_zone_not_granted_is_dead_lettered_as_forbidden_with_a_rejected_result() -> None:
    producer = Producer()

    runner(lambda request: problem(403, "zone_not_granted"), producer).handle(Record(event()))

    (dlq_topic, dead), (_, result) = producer.messages
    assert dlq_topic == "dns.requests.dlq"
    assert dict(dead["headers"])["x-dlq-reason"] == b"forbidden"
    assert json.loads(result["value"])["status"] == "rejected"


def test_a_replayed_request_publishes_no_second_result() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            202, json={"request_id": "r", "status": "failed"}, headers={"Idempotent-Replayed": "true"}
        )

    producer = Producer()
    runner(api, producer).handle(Record(event()))

    assert producer.messages == []


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (Record(b"x" * 2_000_000), "oversize"),
        (Record(b"{nope"), "invalid_json"),
        (Record(event(), headers=[("idempotency-key", "caf\u00e9".encode())]), "invalid_header"),
        (Record(event(), headers=[("idempotency-key", b"a\nb")]), "invalid_header"),
        (Record(event(), headers=[("idempotency-key", b"evt-1\n")]), "invalid_header"),  # `$` let this by
    ],
)
def test_messages_that_cannot_become_requests_are_dead_lettered_without_calling_the_api(
    record: Record, reason: str
) -> None:
    def api(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the API must not be called")

    producer = Producer()
    runner(api, producer).handle(record)

    ((_, dead),) = producer.messages
    headers = dict(dead["headers"])
    assert headers["x-dlq-reason"].decode() == reason
    assert len(dead["value"]) <= DLQ_VALUE_LIMIT
    if reason == "oversize":
        assert headers["x-dlq-original-size"] == b"2000000"


def test_an_event_the_http_client_cannot_send_is_a_dead_letter_not_a_retry_forever() -> None:
    calls: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.LocalProtocolError("Illegal header value b'evt-1\\n'")

    producer = Producer()
    runner(api, producer).handle(Record(event()))

    assert calls == ["/api/v1/records"]  # once: it can never be sent, so it is not tried again
    topics = [topic for topic, _ in producer.messages]
    assert topics == ["dns.requests.dlq", "dns.requests.results"]
    headers = dict(producer.messages[0][1]["headers"])
    assert (headers["x-dlq-reason"], headers["x-dlq-status"]) == (b"unsendable", b"0")
    assert b"LocalProtocolError" in headers["x-dlq-detail"]
    assert json.loads(producer.messages[1][1]["value"])["status"] == "rejected"


def test_a_dead_letter_is_written_even_when_kafka_fails_for_a_while() -> None:
    producer = Producer(failures=3)

    runner(lambda request: problem(422, "invalid"), producer).handle(Record(event()))

    assert [topic for topic, _ in producer.messages] == ["dns.requests.dlq", "dns.requests.results"]


def _event(name: str, operation: str = "record.create", tag: str = "", **fields: Any) -> bytes:
    body: dict[str, Any] = {"schema_version": 1, "event_id": f"e-{name}-{tag}", "operation": operation}
    if operation == "record.create":
        body["body"] = {"name": name, "type": "A", "values": ["192.0.2.1"]}
    body.update(fields)
    return json.dumps(body).encode()


def test_a_batch_is_cut_at_change_sets_and_lanes_are_by_name() -> None:
    records = [
        Record(_event("a.example.test"), offset=1),
        Record(_event("B.example.test."), offset=2),
        Record(_event("a.example.test", tag="x"), offset=3),
        Record(_event("z", "changeset", zone="example.test", body={"changes": []}), offset=4),
        Record(b"{not json", offset=5),
        Record(_event("b.example.test"), offset=6),
    ]

    segments = [[(lane, record.offset) for lane, record in segment] for segment in _segments(records)]

    assert segments == [
        [("a.example.test", 1), ("b.example.test", 2), ("a.example.test", 3)],
        [("", 4)],
        [("", 5)],
        [("b.example.test", 6)],
    ]


def batch_answer(status_of: Callable[[dict[str, Any]], int] = lambda write: 202) -> Callable[..., httpx.Response]:
    """An API answering every batch call, each write with the status ``status_of`` gives it."""
    calls: list[list[dict[str, Any]]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v2/requests:batch", request.url.path
        writes = json.loads(request.content)["writes"]
        calls.append(writes)
        results = []
        for write in writes:
            status = status_of(write)
            body = (
                {"request_id": write["request_id"], "status": "queued"}
                if status == 202
                else {"code": "concurrent_change" if status == 409 else "invalid", "detail": "because"}
            )
            results.append({"status": status, "body": body, "replayed": False})
        return httpx.Response(200, json={"results": results})

    answer.calls = calls  # type: ignore[attr-defined]
    return answer


def test_events_about_one_name_are_decided_in_order_in_rounds_of_one_call() -> None:
    answer = batch_answer()
    consuming = runner(answer)
    records = [
        Record(_event("first.example.test"), offset=1),
        Record(_event("other.example.test"), offset=2),
        Record(_event("first.example.test", tag="again"), offset=3),
    ]

    assert consuming.decide(records)

    names = [[write["body"]["name"] for write in writes] for writes in answer.calls]  # type: ignore[attr-defined]
    assert names == [["first.example.test", "other.example.test"], ["first.example.test"]]
    first = answer.calls[0][0]  # type: ignore[attr-defined]
    assert first["idempotency_key"].startswith("e-first.example.test")  # the event id
    assert first["kafka"] == {"topic": "dns.requests", "partition": 0, "offset": 1}


def test_a_write_left_undecided_is_sent_again_and_the_others_are_not() -> None:
    tries: dict[str, int] = {}

    def status_of(write: dict[str, Any]) -> int:
        name = write["body"]["name"]
        tries[name] = tries.get(name, 0) + 1
        return 409 if name == "busy.example.test" and tries[name] < 3 else 202

    answer = batch_answer(status_of)
    producer = Producer()
    consuming = runner(answer, producer)

    records = [Record(_event("busy.example.test"), offset=1), Record(_event("calm.example.test"), offset=2)]
    assert consuming.decide(records)

    assert tries == {"busy.example.test": 3, "calm.example.test": 1}
    assert [len(writes) for writes in answer.calls] == [2, 1, 1]  # type: ignore[attr-defined]
    assert producer.messages == []  # nothing refused, nothing dead-lettered


def test_a_refused_write_of_a_batch_is_dead_lettered_alone() -> None:
    answer = batch_answer(lambda write: 422 if write["body"]["name"] == "bad.example.test" else 202)
    producer = Producer()

    assert runner(answer, producer).decide(
        [Record(_event("bad.example.test"), offset=1), Record(_event("good.example.test"), offset=2)]
    )

    topics = [topic for topic, _ in producer.messages]
    assert topics == ["dns.requests.dlq", "dns.requests.results"]
    dlq_headers = dict(producer.messages[0][1]["headers"])
    assert (dlq_headers["x-dlq-reason"], dlq_headers["x-original-offset"]) == (b"invalid", b"1")


def test_a_batch_refused_whole_is_decided_event_by_event() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/requests:batch":
            seen.append("batch")
            return problem(422, "invalid")
        name = json.loads(request.content)["name"]
        seen.append(name)
        if name == "a.example.test" and seen.count(name) == 1:
            return problem(429, "rate_limited")  # no decision for this one this time
        return httpx.Response(202, json={"request_id": "r", "status": "succeeded"})

    producer = Producer()
    records = [Record(_event("a.example.test"), offset=1), Record(_event("b.example.test"), offset=2)]
    assert runner(answer, producer).decide(records)

    assert seen == ["batch", "a.example.test", "b.example.test", "batch", "a.example.test"]
    results = [json.loads(message["value"]) for topic, message in producer.messages if topic.endswith("results")]
    assert sorted(result["event_id"] for result in results) == sorted(  # ended at once: both results published
        json.loads(record.value or b"")["event_id"] for record in records
    )
