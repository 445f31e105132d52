"""Kafka events act as the client their topic is bound to (HOSTMASTER_KAFKA_TOPIC_CLIENTS), with
that client's rights and never more: the consumer's own key is a delegate that can do nothing
by itself, each client's event ids are its own, and each reads its own results and dead letters.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from tests.integration.dns_helpers import served, texts
from tests.integration.test_kafka import Consumer, event, read_many
from tests.support import OVERRIDE_ZONE, ZONE, Bind, Kafka, Process, make_client, unique_label, wait_for_terminal

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def teams(kafka: Kafka, stack_env: dict[str, str]) -> dict[str, str]:
    """Two producers' topics, each bound to a client that may write in ZONE only: topic → client."""
    suffix = uuid.uuid4().hex[:8]
    bound = {f"team-a.{suffix}": f"team-a-{suffix}", f"team-b.{suffix}": f"team-b-{suffix}"}
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap, request_timeout_ms=15_000)
    admin.create_topics([NewTopic(f"{topic}{end}", 1, 1) for topic in bound for end in ("", ".dlq", ".results")])
    admin.close()
    for client in bound.values():
        make_client(stack_env, client, ZONE)
    return bound


@pytest.fixture(scope="module")
def consumer_key(stack_env: dict[str, str]) -> str:
    return make_client(stack_env, f"kafka-{unique_label('d')}", scopes=("delegate",))


@pytest.fixture(scope="module")
def bound_consumer(
    stack: httpx.Client, stack_env: dict[str, str], worker: Process, teams: dict[str, str], consumer_key: str
) -> Iterator[Consumer]:
    env = {
        **stack_env,
        "HOSTMASTER_CONSUMER_API_KEY": consumer_key,
        "HOSTMASTER_KAFKA_TOPIC_CLIENTS": json.dumps(teams),
        "HOSTMASTER_KAFKA_GROUP_ID": f"hostmaster-{uuid.uuid4().hex[:6]}",
        "HOSTMASTER_CONSUMER_RETRY_MAX_S": "1",
    }
    running = Consumer(env)
    yield running
    running.stop()


def publish(producer: KafkaProducer, topic: str, value: dict[str, Any]) -> None:
    producer.send(topic, value=json.dumps(value).encode()).get(timeout=10)


def ends(kafka: Kafka, topics: list[str], event_ids: set[str], *, dead: int = 0) -> tuple[dict[str, Any], list[Any]]:
    """The last result of each event id, by topic read (``{event_id: (topic, result)}``), once all
    are there and ``dead`` dead letters of them; and those dead letters."""

    def complete(records: list[Any]) -> bool:
        results = {json.loads(r.value)["event_id"] for r in records if r.topic.endswith(".results")}
        return event_ids <= results and len(_dead(records, event_ids)) >= dead

    records = read_many(kafka, topics, complete, timeout=120)
    last = {}
    for record in records:
        if record.topic.endswith(".results") and (value := json.loads(record.value))["event_id"] in event_ids:
            last[value["event_id"]] = (record.topic, value)
    return last, _dead(records, event_ids)


def _dead(records: list[Any], event_ids: set[str]) -> list[Any]:
    return [
        r for r in records if r.topic.endswith(".dlq") and json.loads(r.value or b"{}").get("event_id") in event_ids
    ]


def test_an_event_acts_as_its_topic_s_client_and_only_that_client_hears_of_it(
    bound_consumer: Consumer,
    producer: KafkaProducer,
    kafka: Kafka,
    teams: dict[str, str],
    stack: httpx.Client,
    bind: Bind,
) -> None:
    (a_topic, a_client), (b_topic, _) = sorted(teams.items())
    granted = event(f"{unique_label('a')}.{ZONE}", "from team a")
    not_granted = event(f"www.{unique_label('a')}.{OVERRIDE_ZONE}", "beyond team a")  # team a: ZONE only
    publish(producer, a_topic, granted)
    publish(producer, a_topic, not_granted)

    topics = [f"{topic}{end}" for topic in (a_topic, b_topic) for end in (".results", ".dlq")]
    last, dead = ends(kafka, topics, {granted["event_id"], not_granted["event_id"]}, dead=1)

    topic, result = last[granted["event_id"]]
    assert (topic, result["status"]) == (f"{a_topic}.results", "succeeded")
    tracked = stack.get(f"/api/v1/requests/{result['request_id']}").json()
    assert (tracked["client"], tracked["source"]) == (a_client, "kafka")
    assert texts(served(bind, granted["body"]["name"], "TXT")) == ['"from team a"']
    topic, refused = last[not_granted["event_id"]]
    assert (topic, refused["status"], refused["error"]["code"]) == (
        f"{a_topic}.results",
        "rejected",
        "zone_not_granted",
    )
    ((letter),) = dead
    assert letter.topic == f"{a_topic}.dlq"
    assert dict(letter.headers)["x-dlq-reason"] == b"forbidden"


def test_one_client_cannot_take_another_s_event_id(
    bound_consumer: Consumer, producer: KafkaProducer, kafka: Kafka, teams: dict[str, str], stack: httpx.Client
) -> None:
    (a_topic, a_client), (b_topic, b_client) = sorted(teams.items())
    event_id = f"evt-{uuid.uuid4()}"  # the same id from both producers: two clients' keys, two requests
    publish(producer, a_topic, event(f"{unique_label('ida')}.{ZONE}", "a", event_id=event_id))
    publish(producer, b_topic, event(f"{unique_label('idb')}.{ZONE}", "b", event_id=event_id))

    def both(records: list[Any]) -> bool:
        succeeded = set()
        for record in records:
            value = json.loads(record.value)
            if value["event_id"] == event_id and value["status"] == "succeeded":
                succeeded.add(record.topic)
        return succeeded == {f"{a_topic}.results", f"{b_topic}.results"}

    records = read_many(kafka, [f"{a_topic}.results", f"{b_topic}.results"], both, timeout=120)

    ids = {r.topic: json.loads(r.value)["request_id"] for r in records if json.loads(r.value)["event_id"] == event_id}
    assert ids[f"{a_topic}.results"] != ids[f"{b_topic}.results"]
    for topic, client in ((a_topic, a_client), (b_topic, b_client)):
        final = wait_for_terminal(stack, ids[f"{topic}.results"])
        assert (final["status"], final["client"]) == ("succeeded", client)


def test_the_consumer_s_key_alone_can_write_nothing_over_rest(
    bound_consumer: Consumer, consumer_key: str, teams: dict[str, str]
) -> None:
    body = {"name": f"{unique_label('rest')}.{ZONE}", "type": "TXT", "values": ["by itself"]}
    with httpx.Client(
        base_url=bound_consumer.api.url, headers={"Authorization": f"Bearer {consumer_key}"}, timeout=10
    ) as own:
        alone = own.post("/api/v1/records", json=body)
        batch = own.post("/api/v2/requests:batch", json={"writes": [{"operation": "record.create", "body": body}]})

    assert (alone.status_code, alone.json()["code"]) == (403, "scope_missing")
    assert batch.status_code == 200
    assert [(r["status"], r["body"]["code"]) for r in batch.json()["results"]] == [(403, "scope_missing")]


def test_an_event_over_its_client_s_quota_is_rejected_for_that_client(
    bound_consumer: Consumer, producer: KafkaProducer, kafka: Kafka, teams: dict[str, str], stack: httpx.Client
) -> None:
    (a_topic, _), (b_topic, b_client) = sorted(teams.items())
    assert stack.patch(f"/api/v1/clients/{b_client}", json={"max_rrsets": 0}).status_code == 200
    time.sleep(1.2)  # the consumer's API sees a change of quotas within its key cache's window (1 s)
    over = event(f"{unique_label('quota')}.{ZONE}", "one too many")
    publish(producer, b_topic, over)

    topics = [f"{topic}{end}" for topic in (a_topic, b_topic) for end in (".results", ".dlq")]
    last, dead = ends(kafka, topics, {over["event_id"]}, dead=1)

    topic, refused = last[over["event_id"]]
    assert (topic, refused["status"], refused["error"]["code"]) == (f"{b_topic}.results", "rejected", "quota_exceeded")
    assert "may have 0 RRsets" in refused["error"]["detail"]
    ((letter),) = dead
    assert letter.topic == f"{b_topic}.dlq"
    final = wait_for_terminal(stack, refused["request_id"])
    assert (final["status"], final["client"], final["error_code"]) == ("rejected", b_client, "quota_exceeded")
