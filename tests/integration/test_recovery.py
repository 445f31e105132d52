"""The recovery job: a write accepted while RabbitMQ was away is delivered later, and a request
that cannot end by itself is ended at its deadline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg2
import pytest

from tests.integration.dns_helpers import served, texts
from tests.support import (
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


def _sql(database_url: str, statement: str, *args: object) -> None:
    """Age or rewind a request behind the API's back: the faults these tests stand for."""
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(statement, args)


def test_a_retrying_request_whose_message_was_lost_is_queued_again(
    api_without_worker: tuple[Process, str],
    admin_key: str,
    stack: httpx.Client,
    stack_env: dict[str, str],
    database_url: str,
    bind: Bind,
) -> None:
    process, _ = api_without_worker  # its message waits in a queue nobody reads: as good as lost
    name = f"{unique_label('lost')}.{ZONE}"
    answer = httpx.post(
        f"{process.url}/api/v1/records",
        json={"name": name, "type": "A", "values": ["192.0.2.82"]},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    request_id = answer.json()["request_id"]
    _sql(
        database_url,
        "UPDATE request SET status = 'retrying', updated_at = now() - interval '10 minutes' WHERE id = %s",
        request_id,
    )

    result = hostmaster(
        {**stack_env, "HOSTMASTER_MAX_BACKOFF_MS": "1000", "HOSTMASTER_RECOVERY_REQUEUE_AFTER_S": "1"}, "recover"
    )

    assert result.returncode == 0, result.stderr
    assert "1 queued again" in result.stdout
    final = wait_for_terminal(stack, request_id)
    assert final["status"] == "succeeded"
    requeued = [event for event in final["events"] if event["step"] == "requeued"]
    assert requeued[0]["detail"]["was"] == "retrying"
    assert texts(served(bind, name, "A")) == ["192.0.2.82"]


def test_an_idempotency_key_answers_for_a_day_and_is_then_released(
    stack: httpx.Client, stack_env: dict[str, str], database_url: str
) -> None:
    key = f"key-{uuid.uuid4()}"
    first = stack.post(
        "/api/v1/records",
        json={"name": f"{unique_label('day')}.{ZONE}", "type": "TXT", "values": ["one"]},
        headers={"Idempotency-Key": key},
    )
    request_id = first.json()["request_id"]
    wait_for_terminal(stack, request_id)
    other_body = {"name": f"{unique_label('day')}.{ZONE}", "type": "TXT", "values": ["two"]}
    _sql(database_url, "UPDATE request SET created_at = now() - interval '23 hours' WHERE id = %s", request_id)
    assert stack.post("/api/v1/records", json=other_body, headers={"Idempotency-Key": key}).status_code == 409

    _sql(database_url, "UPDATE request SET created_at = now() - interval '25 hours' WHERE id = %s", request_id)
    result = hostmaster(stack_env, "recover")

    assert result.returncode == 0, result.stderr
    again = stack.post("/api/v1/records", json=other_body, headers={"Idempotency-Key": key})
    assert again.status_code == 202, again.text
    assert again.json()["request_id"] != request_id
    assert "idempotent-replayed" not in again.headers


def test_a_key_whose_request_is_still_being_planned_answers_409_then_abandoned_after_the_limit(
    stack: httpx.Client, database_url: str
) -> None:
    key = f"key-{uuid.uuid4()}"
    path = f"/api/v1/records/{unique_label('plan')}.{ZONE}/TXT"
    body = {"values": ["planned"]}
    request_id = stack.put(path, json=body, headers={"Idempotency-Key": key}).json()["request_id"]
    wait_for_terminal(stack, request_id)
    # As if the API process had died between the tracker's first row and the plan.
    _sql(database_url, "UPDATE request SET status = 'received' WHERE id = %s", request_id)

    in_flight = stack.put(path, json=body, headers={"Idempotency-Key": key})

    assert in_flight.status_code == 409
    assert in_flight.json()["code"] == "idempotency_key_in_flight"
    assert in_flight.headers["retry-after"]

    _sql(database_url, "UPDATE request SET created_at = now() - interval '2 minutes' WHERE id = %s", request_id)
    later = stack.put(path, json=body, headers={"Idempotency-Key": key})

    assert later.status_code == 202, later.text
    assert later.json()["request_id"] != request_id
    old = stack.get(f"/api/v1/requests/{request_id}").json()
    assert (old["status"], old["error_code"]) == ("failed", "abandoned")


def test_a_request_its_api_left_unplanned_is_ended_as_abandoned(
    stack: httpx.Client, stack_env: dict[str, str], database_url: str
) -> None:
    path = f"/api/v1/records/{unique_label('orphan')}.{ZONE}/TXT"
    request_id = stack.put(path, json={"values": ["orphan"]}).json()["request_id"]
    wait_for_terminal(stack, request_id)
    # As if the API process had died after the tracker's first row, 90 s ago.
    _sql(
        database_url,
        "UPDATE request SET status = 'received', created_at = now() - interval '90 seconds',"
        " updated_at = now() - interval '90 seconds' WHERE id = %s",
        request_id,
    )

    result = hostmaster({**stack_env, "HOSTMASTER_ABANDON_AFTER_S": "60"}, "recover")

    assert result.returncode == 0, result.stderr
    assert "1 abandoned" in result.stdout
    final = stack.get(f"/api/v1/requests/{request_id}").json()
    assert (final["status"], final["error_code"]) == ("failed", "abandoned")
    assert final["events"][-1]["step"] == "failed"


def test_ended_requests_and_old_reports_past_their_retention_are_deleted_and_nothing_else(
    stack: httpx.Client, stack_env: dict[str, str], database_url: str, bind: Bind
) -> None:
    names = [f"{unique_label('old')}.{ZONE}" for _ in range(3)]
    ids = [stack.post("/api/v1/records", json={"name": name, "type": "TXT", "values": ["kept"]}).json()["request_id"]
           for name in names]  # fmt: skip
    for request_id in ids:
        assert wait_for_terminal(stack, request_id)["status"] == "succeeded"
    old, recent = ids[:2], ids[2]
    _sql(database_url, "UPDATE request SET updated_at = now() - interval '91 days' WHERE id = ANY(%s::uuid[])", old)
    older, _ = _report(database_url, days_ago=40), _report(database_url, days_ago=39)
    shown_before = stack.get(f"/api/v1/zones/{ZONE}/reconciliation").json()["id"]  # the zone's latest
    expired, live = _console_session(database_url, minutes=-1), _console_session(database_url, minutes=60)

    result = hostmaster({**stack_env, "HOSTMASTER_RETENTION_BATCH": "1"}, "recover")  # in batches of one

    assert result.returncode == 0, result.stderr
    assert "past their retention: 2 ended requests" in result.stdout, result.stdout
    assert " console sessions deleted" in result.stdout, result.stdout
    assert _sessions_left(database_url, [expired, live]) == [live]
    for request_id in old:
        assert stack.get(f"/api/v1/requests/{request_id}").status_code == 404
    assert stack.get(f"/api/v1/requests/{recent}").json()["status"] == "succeeded"
    for name in names:  # the desired state is never pruned: the RRsets stay, served
        assert stack.get(f"/api/v1/records/{name}/TXT").status_code == 200
        assert texts(served(bind, name, "TXT")) == ['"kept"']
    assert stack.get(f"/api/v1/zones/{ZONE}/reconciliation/{older}").status_code == 404
    shown = stack.get(f"/api/v1/zones/{ZONE}/reconciliation")  # the zone's latest stays, however old
    assert shown.status_code == 200
    assert shown.json()["id"] == shown_before


def _console_session(database_url: str, *, minutes: int) -> str:
    """A console session of the tests' admin that expires ``minutes`` from now (ago, when negative); its id."""
    session_id = uuid.uuid4().hex
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO console_session (id, client_id, created_at, expires_at)"
            " SELECT %s, id, now(), now() + make_interval(mins => %s) FROM api_client WHERE name = 'test-admin'",
            (session_id, minutes),
        )
    return session_id


def _sessions_left(database_url: str, ids: list[str]) -> list[str]:
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM console_session WHERE id = ANY(%s)", (ids,))
        return [row[0] for row in cursor.fetchall()]


def _report(database_url: str, *, days_ago: int) -> int:
    """A finished reconciliation report of ZONE, ``days_ago`` old; its id."""
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO zone_reconciliation (zone_id, zone, trigger, repair, status, attempts, requested_at,"
            " finished_at, compared, skipped, drifted, repaired, unmanaged, differences)"
            " SELECT id, name, 'periodic', false, 'in_sync', 1, now() - make_interval(days => %s),"
            " now() - make_interval(days => %s), 0, 0, 0, 0, 0, '[]' FROM zone WHERE name = %s RETURNING id",
            (days_ago, days_ago, f"{ZONE}."),
        )
        (report_id,) = cursor.fetchone()
    return int(report_id)
