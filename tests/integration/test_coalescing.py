"""Coalescing: requests that wait for the same zone are applied together, in shared UPDATEs, and
each still ends on its own — succeeded, failed for its own RRset, or retried when the batch was.

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

from tests.conftest import (
    DOWN_ZONE,
    ZONE,
    Bind,
    Process,
    rabbitmq_connection,
    start_api,
    start_process,
    unique_label,
    wait_for_terminal,
    wait_until,
)
from tests.integration.dns_helpers import change_outside_hostmaster, served, texts

pytestmark = pytest.mark.integration


@dataclass
class Held:
    """An API whose queue nobody reads yet (``client`` calls it), and how to start a worker on that queue."""

    client: httpx.Client
    queue: str
    start_worker: Callable[..., Process]


@pytest.fixture
def held(stack: httpx.Client, stack_env: dict[str, str], admin_key: str) -> Iterator[Held]:
    queue = f"hostmaster_held_{uuid.uuid4().hex[:8]}"
    env = {**stack_env, "HOSTMASTER_QUEUE_NAME": queue}
    api = start_api("api-held", env)
    workers: list[Process] = []

    def worker(*, processes: int = 1, threads: int = 1) -> Process:
        process = start_process(
            f"worker-held-{len(workers)}",
            ["-m", "workers", "--processes", str(processes), "--threads", str(threads)],
            env,
        )
        workers.append(process)
        wait_until(
            lambda: process.popen.poll() is None and "ready for action" in process.log_path.read_text(),
            timeout=30,
            what="the worker to start",
        )
        return process

    with httpx.Client(base_url=api.url, timeout=10, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        yield Held(client, queue, worker)
    for process in (*workers, api):
        process.stop()
    connection = rabbitmq_connection()
    for suffix in ("", ".DQ", ".XQ"):
        connection.channel().queue_delete(queue + suffix)
    connection.close()


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
    """The request whose message led the batch that applied ``request`` (its last attempt)."""
    started = events(request, "started")[-1]
    return str(started.get("led_by", request["request_id"]))


def test_a_backlog_of_200_requests_goes_out_in_a_few_updates_each_request_applied_once(
    held: Held, stack: httpx.Client, bind: Bind, database_url: str
) -> None:
    client, start_worker = held.client, held.start_worker
    parent = f"{unique_label('co')}.{ZONE}"
    names = [f"h{index}.{parent}" for index in range(200)]
    request_ids = submit(client, [a_record(name, f"198.51.100.{index % 250 + 1}") for index, name in enumerate(names)])
    assert statuses(database_url, request_ids) == {"queued": 200}

    start_worker(processes=2, threads=2)  # four threads take messages at once and race for the backlog
    began = time.monotonic()
    wait_all_ended(database_url, request_ids, timeout=60)
    drained = time.monotonic() - began

    finals = [stack.get(f"/api/v1/requests/{request_id}").json() for request_id in request_ids]
    assert {final["status"] for final in finals} == {"succeeded"}
    for index in range(0, 200, 9):
        assert texts(served(bind, names[index], "A")) == [f"198.51.100.{index % 250 + 1}"]
    assert texts(served(bind, names[-1], "A")) == ["198.51.100.200"]
    assert all(len(events(final, "started")) == 1 for final in finals), "a request was applied twice"
    assert all(len(events(final, "dns_sent")) == len(events(final, "dns_verified")) == 1 for final in finals)

    batches: dict[str, dict[str, Any]] = {}
    for final in finals:
        sent = events(final, "dns_sent")[0]
        batch = batches.setdefault(batch_of(final), {"requests": 0, "messages": sent["messages"]})
        batch["requests"] += 1
        assert sent["messages"] == batch["messages"]  # one batch, one count of UPDATEs for all of it
        assert sent["rrsets"] == 1
        assert sent["batch"] == events(final, "started")[0]["batch"]
    largest = max(batch["requests"] for batch in batches.values())
    messages = sum(batch["messages"] for batch in batches.values())
    assert largest > 50, batches
    assert messages <= 20, f"{messages} UPDATE messages for 200 requests"
    print(  # the figures, for whoever reads the output (-s)
        f"\n200 requests: {len(batches)} batches (largest {largest}), {messages} UPDATE messages "
        f"({200 / messages:.0f} requests per UPDATE), all ended {drained:.1f} s after the worker was ready"
    )


def test_two_requests_for_one_rrset_in_a_batch_end_with_the_later_values_served(
    held: Held, stack: httpx.Client, bind: Bind
) -> None:
    client, start_worker = held.client, held.start_worker
    name = f"{unique_label('twice')}.{ZONE}"
    first = client.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.101"]})
    second = client.put(f"/api/v1/records/{name}/A", json={"values": ["192.0.2.102"]})
    others = submit(client, [{"name": f"o{index}.{name}", "type": "TXT", "values": ["other"]} for index in range(5)])
    assert first.status_code == second.status_code == 202, (first.text, second.text)

    start_worker(threads=1)  # one thread: the first message leads, and takes all the others

    earlier = wait_for_terminal(stack, first.json()["request_id"])
    later = wait_for_terminal(stack, second.json()["request_id"])
    assert earlier["status"] == later["status"] == "succeeded", (earlier, later)
    assert texts(served(bind, name, "A")) == ["192.0.2.102"]
    assert batch_of(later) == batch_of(earlier) == earlier["request_id"]
    assert events(later, "started")[0]["batch"] == 7
    assert earlier["changes"][0]["status"] in ("superseded", "succeeded")
    assert later["changes"][0]["status"] == "succeeded"
    sent = events(earlier, "dns_sent")[0]
    assert (sent["messages"], sent["batch"], sent["batch_rrsets"]) == (1, 7, 6)  # the RRset went once
    for request_id in others:
        assert wait_for_terminal(stack, request_id)["status"] == "succeeded"
    assert stack.get(f"/api/v1/records/{name}/A").json()["status"] == "active"


def test_drift_of_one_rrset_fails_only_the_request_that_changes_it(held: Held, stack: httpx.Client, bind: Bind) -> None:
    client, start_worker = held.client, held.start_worker
    parent = f"{unique_label('iso')}.{ZONE}"
    drifted = f"drifted.{parent}"
    made = stack.post("/api/v1/records", json={"name": drifted, "type": "A", "values": ["192.0.2.110"]})
    assert wait_for_terminal(stack, made.json()["request_id"])["status"] == "succeeded"
    change_outside_hostmaster(bind, ZONE, drifted, "A", ["192.0.2.66"])

    bad = client.put(f"/api/v1/records/{drifted}/A", json={"values": ["192.0.2.111"]}).json()["request_id"]
    good = submit(client, [a_record(f"g{index}.{parent}", "192.0.2.112") for index in range(20)])
    start_worker(threads=1)

    failed = wait_for_terminal(stack, bad)
    assert (failed["status"], failed["error_code"]) == ("failed", "drift_detected")
    assert texts(served(bind, drifted, "A")) == ["192.0.2.66"]  # nothing overwritten
    for request_id in good:
        final = wait_for_terminal(stack, request_id)
        assert final["status"] == "succeeded", final
        assert batch_of(final) == bad  # it shared the UPDATE the drift refused
    assert texts(served(bind, f"g7.{parent}", "A")) == ["192.0.2.112"]


def test_the_rest_of_a_dead_workers_batch_is_taken_on_by_its_leaders_message_again(
    held: Held, stack: httpx.Client, bind: Bind, database_url: str
) -> None:
    client, start_worker = held.client, held.start_worker
    parent = f"{unique_label('dead')}.{ZONE}"
    request_ids = submit(client, [a_record(f"d{index}.{parent}", "192.0.2.130") for index in range(10)])
    # As a worker killed in the middle of its batch leaves them: in progress, held by nobody.
    orphaned = "UPDATE request SET status = 'in_progress', attempts = 1 WHERE id = ANY(%s::uuid[])"
    execute(database_url, orphaned, request_ids)

    start_worker(threads=1)
    wait_all_ended(database_url, request_ids, timeout=30)

    finals = [stack.get(f"/api/v1/requests/{request_id}").json() for request_id in request_ids]
    assert {final["status"] for final in finals} == {"succeeded"}
    leaders = {batch_of(final) for final in finals}
    assert len(leaders) == 1, leaders  # the first message took on all ten
    attempts = {final["request_id"]: events(final, "started")[0]["attempt"] for final in finals}
    assert attempts == {request_id: 1 if request_id in leaders else 2 for request_id in request_ids}
    assert texts(served(bind, f"d9.{parent}", "A")) == ["192.0.2.130"]


def test_a_batch_that_fails_transiently_retries_each_request_then_fails_each_with_its_reason(
    held: Held, stack: httpx.Client, database_url: str
) -> None:
    client, start_worker = held.client, held.start_worker
    parent = f"{unique_label('down')}.{DOWN_ZONE}"  # registered at a closed port
    request_ids = submit(client, [a_record(f"d{index}.{parent}", "192.0.2.120") for index in range(12)])

    start_worker(threads=2)
    wait_all_ended(database_url, request_ids, timeout=90)

    finals = [stack.get(f"/api/v1/requests/{request_id}").json() for request_id in request_ids]
    assert statuses(database_url, request_ids) == {"failed": 12}  # none left in progress or retrying
    for final in finals:
        assert final["error_code"] == "retries_exhausted", final
        assert "cannot reach" in final["error_detail"]
        assert final["changes"][0]["status"] == "failed"
        steps = [event["step"] for event in final["events"]]
        assert steps.count("started") == final["attempts"] == 3  # max_retries=2: each its own budget, no more
        assert steps.count("retry_scheduled") == 2
        assert steps[-2:] == ["dead_lettered", "failed"]
    riders = [final for final in finals if "led_by" in events(final, "started")[0]]
    assert riders, "no request rode in another's batch"
    for final in riders:
        retried = events(final, "retry_scheduled")[0]
        assert retried["led_by"] == events(final, "started")[0]["led_by"]
        assert retried["code"] == "dns_unreachable"
    wait_until(lambda: dead_letters(held.queue) >= set(request_ids), timeout=15, what="every one dead-lettered")


def dead_letters(queue: str) -> set[str]:
    """The request ids of the messages in ``queue``'s dead-letter queue (read, then put back)."""
    connection = rabbitmq_connection()
    channel = connection.channel()
    found = set()
    while True:
        method, _properties, body = channel.basic_get(f"{queue}.XQ", auto_ack=False)
        if method is None:
            break
        found.add(json.loads(body)["args"][0])
    connection.close()  # unacknowledged messages go back to the queue
    return found
