"""The recovery job: a write accepted while RabbitMQ was away is delivered later, and a request
that cannot end by itself is ended at its deadline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import (
    ZONE,
    Bind,
    Process,
    free_port,
    hostmaster,
    rabbitmq_connection,
    start_api,
    unique_label,
    wait_for_terminal,
)
from tests.integration.dns_helpers import served, texts

pytestmark = pytest.mark.integration


@pytest.fixture
def api_without_broker(stack: httpx.Client, stack_env: dict[str, str]) -> Iterator[Process]:
    """An API whose RabbitMQ is away: it still accepts writes, as queued."""
    env = {**stack_env, "HOSTMASTER_RABBITMQ_URL": f"amqp://guest@127.0.0.1:{free_port()}/%2F"}
    process = start_api("api-no-broker", env)
    yield process
    process.stop()


@pytest.fixture
def api_without_worker(stack: httpx.Client, stack_env: dict[str, str]) -> Iterator[tuple[Process, str]]:
    """An API whose queue no worker reads: its requests would wait forever."""
    queue = f"hostmaster_nobody_{uuid.uuid4().hex[:8]}"
    process = start_api("api-no-worker", {**stack_env, "HOSTMASTER_QUEUE_NAME": queue})
    yield process, queue
    process.stop()
    connection = rabbitmq_connection()
    for suffix in ("", ".DQ", ".XQ"):
        connection.channel().queue_delete(queue + suffix)
    connection.close()


def test_a_write_accepted_while_rabbitmq_was_away_is_delivered_by_the_recovery_job(
    api_without_broker: Process, admin_key: str, stack: httpx.Client, stack_env: dict[str, str], bind: Bind
) -> None:
    name = f"{unique_label('later')}.{ZONE}"
    answer = httpx.post(
        f"{api_without_broker.url}/api/v1/records",
        json={"name": name, "type": "A", "values": ["192.0.2.80"]},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued"
    request_id = answer.json()["request_id"]
    time.sleep(1.5)
    assert stack.get(f"/api/v1/requests/{request_id}").json()["status"] == "queued"  # nothing took it

    result = hostmaster({**stack_env, "HOSTMASTER_RECOVERY_REQUEUE_AFTER_S": "1"}, "recover")

    assert result.returncode == 0, result.stderr
    assert "queued again" in result.stdout
    final = wait_for_terminal(stack, request_id)
    assert final["status"] == "succeeded"
    steps = [event["step"] for event in final["events"]]
    assert steps.index("enqueue_failed") < steps.index("requeued") < steps.index("started")
    assert texts(served(bind, name, "A")) == ["192.0.2.80"]


def test_a_request_that_cannot_end_is_failed_at_its_deadline(
    api_without_worker: tuple[Process, str], admin_key: str, stack: httpx.Client, stack_env: dict[str, str]
) -> None:
    process, _ = api_without_worker
    name = f"{unique_label('stuck')}.{ZONE}"
    answer = httpx.post(
        f"{process.url}/api/v1/records",
        json={"name": name, "type": "A", "values": ["192.0.2.81"]},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    request_id = answer.json()["request_id"]
    time.sleep(2.5)

    result = hostmaster(
        {**stack_env, "HOSTMASTER_REQUEST_DEADLINE_S": "2", "HOSTMASTER_RECOVERY_REQUEUE_AFTER_S": "1"}, "recover"
    )

    assert result.returncode == 0, result.stderr
    final = stack.get(f"/api/v1/requests/{request_id}").json()
    assert final["status"] == "failed"
    assert final["error_code"] == "timeout"
    assert final["changes"][0]["status"] == "failed"
    assert stack.get(f"/api/v1/records/{name}/A").json()["status"] == "error"
