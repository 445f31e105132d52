"""Coalescing: requests that wait for the same zone are applied together, in shared UPDATEs, and
each still ends on its own — succeeded, failed for its own RRset, or retried by its own message.

Each test queues its requests through an API whose queue no worker reads yet, then starts a
worker of its own on that queue: the worker finds a backlog, as under load."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg2
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from tests.integration.dns_helpers import change_outside_hostmaster, delete_outside_hostmaster, served, texts
from tests.support import (
    BULK_ZONE,
    DOWN_ZONE,
    Bind,
    Kafka,
    Process,
    dead_lettered,
    make_client,
    rabbitmq_connection,
    start_api,
    start_process,
    unique_label,
    wait_for_terminal,
    wait_until,
)

pytestmark = pytest.mark.integration


@dataclass
class Held:
    """An API whose queue nobody reads yet (``client`` calls it), and how to start a worker on that queue."""

    client: httpx.Client
    queue: str
    env: dict[str, str]
    api: Process
    start: Callable[..., Process]


@pytest.fixture
def held(stack: httpx.Client, stack_env: dict[str, str], admin_key: str, kafka: Kafka) -> Iterator[Held]:
    suffix = uuid.uuid4().hex[:8]
    queue = f"hostmaster_held_{suffix}"
    topics = {
        name: f"{name.lower().replace('_', '.')}.held.{suffix}" for name in ("TOPIC", "DLQ_TOPIC", "RESULTS_TOPIC")
    }
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap, request_timeout_ms=15_000)
    admin.create_topics([NewTopic(topic, 1, 1) for topic in topics.values()])
    admin.close()
    env = {
        **stack_env,
        "HOSTMASTER_QUEUE_NAME": queue,
        **{f"HOSTMASTER_KAFKA_{name}": topic for name, topic in topics.items()},
    }
    api = start_api("api-held", env)
    processes: list[Process] = []

    def start(name: str, args: list[str], ready: str | None = None, **extra: str) -> Process:
        process = start_process(f"{name}-held-{len(processes)}", args, {**env, **extra})
        processes.append(process)
        if ready is not None:
            wait_until(
                lambda: process.popen.poll() is None and ready in process.log_path.read_text(),
                timeout=30,
                what=f"{name} to start",
            )
        return process

    with httpx.Client(base_url=api.url, timeout=10, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        yield Held(client, queue, env, api, start)
    for process in (*processes, api):
        process.stop()
    connection = rabbitmq_connection()
    for suffix_name in ("", ".DQ", ".XQ"):
        connection.channel().queue_delete(queue + suffix_name)
    connection.close()


def start_worker(held: Held, *, processes: int = 1, threads: int = 1) -> Process:
    args = ["-m", "workers", "--processes", str(processes), "--threads", str(threads)]
    return held.start("worker", args, ready="ready for action")


def submit(client: httpx.Client, bodies: list[dict[str, Any]]) -> list[str]:
    """POST each record (8 at a time, as concurrent clients would); the request ids, in order."""

    def post(body: dict[str, Any]) -> str:
        answer = client.post("/api/v1/records", json=body)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["request_id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, bodies))


def a_record(name: str, address: str) -> dict[str, Any]:
    return {"name": name, "type": "A", "values": [address]}


def execute(database_url: str, statement: str, *args: object) -> list[tuple[Any, ...]]:
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(statement, args)
        return cursor.fetchall() if cursor.description else []


def statuses(database_url: str, request_ids: list[str]) -> Counter[str]:
    rows = execute(database_url, "SELECT status FROM request WHERE id = ANY(%s::uuid[])", request_ids)
    return Counter(status for (status,) in rows)


def wait_all_ended(database_url: str, request_ids: list[str], timeout: float) -> None:
    def ended() -> bool:
        counts = statuses(database_url, request_ids)
        return sum(counts[status] for status in ("succeeded", "failed", "rejected")) == len(request_ids)

    wait_until(ended, timeout=timeout, what=f"{len(request_ids)} requests to end", interval=0.2)


def events(request: dict[str, Any], step: str) -> list[dict[str, Any]]:
    return [event["detail"] for event in request["events"] if event["step"] == step]


def batch_of(request: dict[str, Any]) -> str:
    """The request whose message led the pass that applied ``request`` (its last attempt)."""
    started = events(request, "started")[-1]
    return str(started.get("led_by", request["request_id"]))


def test_a_backlog_of_200_requests_goes_out_in_a_few_updates_each_request_applied_once(
    held: Held, stack: httpx.Client, bind: Bind, database_url: str
) -> None:
    parent = f"{unique_label('co')}.{BULK_ZONE}"
    names = [f"h{index}.{parent}" for index in range(200)]
    request_ids = submit(
        held.client, [a_record(name, f"198.51.100.{index % 250 + 1}") for index, name in enumerate(names)]
    )
    assert statuses(database_url, request_ids) == {"queued": 200}

    start_worker(held, processes=2, threads=2)  # four threads take messages at once and race for the backlog
    began = time.monotonic()
    wait_all_ended(database_url, request_ids, timeout=60)
    drained = time.monotonic() - began

    finals = [stack.get(f"/api/v1/requests/{request_id}").json() for request_id in request_ids]
    assert {final["status"] for final in finals} == {"succeeded"}
    for index in range(0, 200, 9):
        assert texts(served(bind, names[index], "A")) == [f"198.51.100.{index % 250 + 1}"]
    assert texts(served(bind, names[-1], "A")) == ["198.51.100.200"]
    for final in finals:
        steps = [event["step"] for event in final["events"]]
        assert steps == ["received", "validated", "queued", "started", "dns_sent", "dns_verified", "succeeded"]
        assert final["attempts"] == 1
        times = [event["at"] for event in final["events"]]
        assert times == sorted(times)

    batches: dict[str, dict[str, Any]] = {}
    for final in finals:
        sent = events(final, "dns_sent")[0]
        batch = batches.setdefault(batch_of(final), {"requests": 0, "messages": sent["messages"]})
        batch["requests"] += 1
        assert sent["messages"] == batch["messages"]  # one pass, one count of UPDATEs for all of it
        assert sent["rrsets"] == 1
        assert sent["batch"] == events(final, "started")[0]["batch"]
    largest = max(batch["requests"] for batch in batches.values())
    messages = sum(batch["messages"] for batch in batches.values())
    assert largest > 50, batches
    assert messages <= 20, f"{messages} UPDATE messages for 200 requests"
    assert sum(batch["requests"] for batch in batches.values()) == 200
    rows = execute(
        database_url,
        "SELECT status, applied->>'version' FROM rrset WHERE owner = ANY(%s)",
        [name + "." for name in names],
    )
    assert Counter(rows) == {("active", "1"): 200}
    print(  # the figures, for whoever reads the output (-s)
        f"\n200 requests: {len(batches)} passes (largest {largest}), {messages} UPDATE messages, "
        f"all ended {drained:.1f} s after the worker was ready"
    )


def test_two_requests_for_one_rrset_in_a_pass_end_with_the_later_values_served(
    held: Held, stack: httpx.Client, bind: Bind
) -> None:
    client = held.client
    name = f"{unique_label('twice')}.{BULK_ZONE}"
    first = client.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.101"]})
    second = client.put(f"/api/v1/records/{name}/A", json={"values": ["192.0.2.102"]})
    assert first.status_code == second.status_code == 202, (first.text, second.text)
    others = submit(client, [{"name": f"o{index}.{name}", "type": "TXT", "values": ["other"]} for index in range(5)])

    start_worker(held, threads=1)  # one thread: the first message leads, and takes all the others

    earlier = wait_for_terminal(stack, first.json()["request_id"])
    later = wait_for_terminal(stack, second.json()["request_id"])
    assert earlier["status"] == later["status"] == "succeeded", (earlier, later)
    assert texts(served(bind, name, "A")) == ["192.0.2.102"]
    assert batch_of(later) == batch_of(earlier) == earlier["request_id"]
    assert events(later, "started")[0]["batch"] == 7
    assert earlier["changes"][0]["status"] == "superseded"  # the later state went out instead
    assert later["changes"][0]["status"] == "succeeded"
    sent = events(earlier, "dns_sent")[0]
    assert (sent["messages"], sent["batch"], sent["batch_rrsets"]) == (1, 7, 6)  # the RRset went once
    for request_id in others:
        assert wait_for_terminal(stack, request_id)["status"] == "succeeded"
    assert stack.get(f"/api/v1/records/{name}/A").json()["status"] == "active"


def test_drift_of_one_rrset_fails_only_the_request_that_changes_it(held: Held, stack: httpx.Client, bind: Bind) -> None:
    parent = f"{unique_label('iso')}.{BULK_ZONE}"
    drifted = f"drifted.{parent}"
    made = stack.post("/api/v1/records", json={"name": drifted, "type": "A", "values": ["192.0.2.110"]})
    assert wait_for_terminal(stack, made.json()["request_id"])["status"] == "succeeded"
    change_outside_hostmaster(bind, BULK_ZONE, drifted, "A", ["192.0.2.66"])

    bad = held.client.put(f"/api/v1/records/{drifted}/A", json={"values": ["192.0.2.111"]}).json()["request_id"]
    good = submit(held.client, [a_record(f"g{index}.{parent}", "192.0.2.112") for index in range(20)])
    start_worker(held, threads=1)

    failed = wait_for_terminal(stack, bad)
    assert (failed["status"], failed["error_code"]) == ("failed", "drift_detected")
    assert texts(served(bind, drifted, "A")) == ["192.0.2.66"]  # nothing overwritten
    for request_id in good:
        final = wait_for_terminal(stack, request_id)
        assert final["status"] == "succeeded", final
        assert batch_of(final) == bad  # it shared the UPDATE the drift refused
    assert texts(served(bind, f"g7.{parent}", "A")) == ["192.0.2.112"]


def test_a_refused_shared_update_is_split_until_only_the_culprits_request_fails(
    held: Held, stack: httpx.Client, bind: Bind
) -> None:
    """BIND refuses a whole UPDATE that adds an MX pointing at an in-zone name without an address:
    the pass halves the message until the MX alone is refused; every other request succeeds."""
    parent = f"{unique_label('split')}.{BULK_ZONE}"
    host = f"mail.{parent}"
    made = stack.post("/api/v1/records", json=a_record(host, "192.0.2.25"))
    assert wait_for_terminal(stack, made.json()["request_id"])["status"] == "succeeded"
    delete_outside_hostmaster(bind, BULK_ZONE, host, "A")  # Hostmaster still believes mail has its address

    good = submit(held.client, [a_record(f"g{index}.{parent}", "192.0.2.26") for index in range(10)])
    culprit = held.client.post(
        "/api/v1/records", json={"name": f"mx.{parent}", "type": "MX", "values": [f"10 {host}"]}
    ).json()["request_id"]
    good += submit(held.client, [a_record(f"h{index}.{parent}", "192.0.2.27") for index in range(10)])
    start_worker(held, threads=1)

    refused = wait_for_terminal(stack, culprit)
    assert (refused["status"], refused["error_code"]) == ("failed", "refused"), refused
    assert served(bind, f"mx.{parent}", "MX") is None
    messages = {events(refused, "dns_sent")[0]["messages"]}
    leaders = {batch_of(refused)}
    for request_id in good:
        final = wait_for_terminal(stack, request_id)
        assert final["status"] == "succeeded", final
        leaders.add(batch_of(final))
        messages.add(events(final, "dns_sent")[0]["messages"])
    assert len(leaders) == 1  # all in one pass
    assert len(messages) == 1
    assert 3 <= messages.pop() <= 12
    assert texts(served(bind, f"h9.{parent}", "A")) == ["192.0.2.27"]


def test_a_pass_that_fails_transiently_leaves_each_request_to_its_own_retries(
    held: Held, stack: httpx.Client, database_url: str
) -> None:
    parent = f"{unique_label('down')}.{DOWN_ZONE}"  # registered at a closed port
    request_ids = submit(held.client, [a_record(f"d{index}.{parent}", "192.0.2.120") for index in range(12)])

    start_worker(held, threads=2)
    wait_all_ended(database_url, request_ids, timeout=90)

    finals = [stack.get(f"/api/v1/requests/{request_id}").json() for request_id in request_ids]
    assert statuses(database_url, request_ids) == {"failed": 12}  # none left queued or retrying
    for final in finals:
        assert final["error_code"] == "retries_exhausted", final
        assert "cannot reach" in final["error_detail"]
        assert final["changes"][0]["status"] == "failed"
        steps = [event["step"] for event in final["events"]]
        assert steps.count("started") == final["attempts"] == 3  # max_retries=2: each its own budget, no more
        assert steps.count("retry_scheduled") == 2
        assert steps[-2:] == ["dead_lettered", "failed"]
        assert all("led_by" not in started for started in events(final, "started"))  # released, never charged
    wait_until(lambda: dead_lettered(held.queue) >= set(request_ids), timeout=15, what="every one dead-lettered")


def test_kafka_requests_applied_together_get_one_result_each(held: Held, kafka: Kafka, stack: httpx.Client) -> None:
    key = make_client(held.env, f"kafka-{unique_label('c')}", BULK_ZONE, scopes=("write",))
    held.start(
        "consumer",
        ["-m", "consumer"],
        HOSTMASTER_API_URL=held.api.url,
        HOSTMASTER_CONSUMER_API_KEY=key,
        HOSTMASTER_KAFKA_GROUP_ID=f"held-{uuid.uuid4().hex[:6]}",
        HOSTMASTER_CONSUMER_RETRY_MAX_S="1",
    )
    parent = f"{unique_label('kc')}.{BULK_ZONE}"
    sent = []
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for index in range(40):
        event_id = f"evt-{uuid.uuid4()}"
        body = {"name": f"k{index}.{parent}", "type": "TXT", "values": [f"kafka {index}"]}
        value = {"schema_version": 1, "event_id": event_id, "operation": "record.create", "body": body}
        producer.send(held.env["HOSTMASTER_KAFKA_TOPIC"], value=json.dumps(value).encode())
        sent.append(event_id)
    producer.flush(timeout=30)
    producer.close()
    queued = "SELECT count(*) FROM request WHERE source = 'kafka' AND status = 'queued' AND payload::text LIKE %s"
    database_url = held.env["HOSTMASTER_DATABASE_URL"]
    pattern = f"%{parent}%"
    wait_until(lambda: execute(database_url, queued, pattern)[0][0] == 40, timeout=90, what="40 Kafka requests queued")

    start_worker(held, threads=2)

    results = read_results(kafka.bootstrap, held.env["HOSTMASTER_KAFKA_RESULTS_TOPIC"], set(sent))
    time.sleep(3)  # a second result, if any, would come with the messages the passes made no-ops
    results = read_results(kafka.bootstrap, held.env["HOSTMASTER_KAFKA_RESULTS_TOPIC"], set(sent))
    assert Counter(len(found) for found in results.values()) == {1: 40}, "a result missing or published twice"
    assert {found[0]["status"] for found in results.values()} == {"succeeded"}
    finals = [stack.get(f"/api/v1/requests/{found[0]['request_id']}").json() for found in results.values()]
    assert max(events(final, "started")[0]["batch"] for final in finals) > 5  # they were applied together


def test_a_pass_that_changes_a_large_share_of_its_zone_is_verified_by_one_transfer(
    stack: httpx.Client, bind: Bind
) -> None:
    parent = f"{unique_label('axfr')}.{BULK_ZONE}"
    changes = [
        {"op": "upsert", "name": f"h{index}.{parent}", "type": "A", "values": [f"198.51.100.{index % 250 + 1}"]}
        for index in range(1_500)
    ]
    answer = stack.post(f"/api/v2/zones/{BULK_ZONE}/changes", json={"changes": changes})
    assert answer.status_code == 202, answer.text

    final = wait_for_terminal(stack, answer.json()["request_id"], timeout=120)

    assert final["status"] == "succeeded", final["error_detail"]
    assert [event["by"] for event in events(final, "dns_verified")] == ["transfer"]
    assert sum(event["messages"] for event in events(final, "dns_sent")) <= 6  # 48,000 octets each
    for index in range(0, 1_500, 97):
        assert texts(served(bind, f"h{index}.{parent}", "A")) == [f"198.51.100.{index % 250 + 1}"]


def read_results(bootstrap: str, topic: str, event_ids: set[str], timeout: float = 90) -> dict[str, list[Any]]:
    reader = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
    )
    found: dict[str, list[Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and set(found) < event_ids:
            for records in reader.poll(timeout_ms=1000).values():
                for record in records:
                    value = json.loads(record.value)
                    if value.get("event_id") in event_ids:
                        found.setdefault(value["event_id"], []).append(value)
    finally:
        reader.close()
    assert set(found) == event_ids, f"{len(event_ids - set(found))} results missing"
    return found
