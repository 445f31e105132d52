"""`make run` as a newcomer uses it: the API answers, a POSTed record is served by BIND,
and stopping it stops everything it started (the script behind `make run` is scripts/run.sh)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kafka import KafkaProducer

from tests.integration.dns_helpers import served_at
from tests.support import (
    PG_HOST,
    PG_PORT,
    ROOT,
    TEST_RUN_DIR,
    as_admin,
    free_port,
    pg_connect,
    port_open,
    rabbitmq_connection,
    unique_label,
    wait_for_terminal,
    wait_until,
)

pytestmark = pytest.mark.integration

RUN_DIR = TEST_RUN_DIR / "make-run"
DATABASE = f"hostmaster_runsh_test_{os.getpid()}"


@pytest.fixture
def make_run(database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, int], Path, str]]:
    ports = {"api": free_port(), "bind": free_port(), "kafka": free_port()}
    queue = f"hostmaster_runsh_{uuid.uuid4().hex[:8]}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOSTMASTER_")}
    env.update(
        API_PORT=str(ports["api"]),
        BIND_PORT=str(ports["bind"]),
        KAFKA_PORT=str(ports["kafka"]),
        DB_NAME=DATABASE,
        RUN_DIR=str(RUN_DIR),
        HOSTMASTER_QUEUE_NAME=queue,
    )
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    RUN_DIR.mkdir(parents=True)
    log = RUN_DIR / "make-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield process, ports, log, queue
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    subprocess.run(["bash", "scripts/bind.sh", "stop", str(RUN_DIR / "bind")], cwd=ROOT, check=False)
    connection = rabbitmq_connection()
    channel = connection.channel()
    for suffix in ("", ".DQ", ".XQ"):
        channel.queue_delete(queue + suffix)
    connection.close()
    as_admin(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def consumers(queue: str) -> int:
    connection = rabbitmq_connection()
    count: int = connection.channel().queue_declare(queue, passive=True).method.consumer_count
    connection.close()
    return count


def test_make_run_serves_a_posted_record_and_stops_what_it_started(
    make_run: tuple[subprocess.Popen[bytes], dict[str, int], Path, str],
) -> None:
    process, ports, log, queue = make_run
    api = f"http://127.0.0.1:{ports['api']}"

    def api_up() -> bool:
        assert process.poll() is None, f"make run exited:\n{log.read_text()}"
        try:
            return httpx.get(f"{api}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(api_up, timeout=180, what="make run to serve the API", interval=0.5)
    wait_until(lambda: "Hostmaster is running" in log.read_text(), timeout=10, what="the banner of make run")
    output = log.read_text()
    assert f"http://127.0.0.1:{ports['api']}/docs" in output
    assert "http://127.0.0.1:15672" in output
    management = httpx.get("http://127.0.0.1:15672/api/overview", auth=("guest", "guest"), timeout=10)
    assert management.status_code == 200, "the RabbitMQ management UI must answer"

    key = next(line.split()[-1] for line in output.splitlines() if line.strip().startswith("Admin key"))
    name = f"{unique_label('make-run')}.example.test"
    with httpx.Client(base_url=api, timeout=10, headers={"Authorization": f"Bearer {key}"}) as client:
        answer = client.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.99"]})
        assert answer.status_code == 202, answer.text
        assert wait_for_terminal(client, answer.json()["request_id"])["status"] == "succeeded"
    rrset = served_at("127.0.0.1", ports["bind"], name, "A")
    assert rrset is not None
    assert [rdata.to_text() for rdata in rrset] == ["192.0.2.99"]

    by_kafka = f"{unique_label('kafka')}.example.test"
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{ports['kafka']}", acks="all")
    event = {
        "schema_version": 1,
        "event_id": by_kafka,
        "operation": "record.create",
        "body": {"name": by_kafka, "type": "A", "values": ["192.0.2.98"]},
    }
    producer.send("dns.requests", json.dumps(event).encode()).get(timeout=10)
    producer.close()
    wait_until(
        lambda: served_at("127.0.0.1", ports["bind"], by_kafka, "A") is not None,
        timeout=60,
        what="the event published on Kafka to be served",
    )
    assert consumers(queue) >= 1

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    process.wait(timeout=60)
    wait_until(lambda: consumers(queue) == 0, timeout=10, what="the worker to leave the queue")
    assert not port_open("127.0.0.1", ports["api"])
    assert not port_open("127.0.0.1", ports["bind"])
    assert not port_open("127.0.0.1", ports["kafka"])
    assert port_open(PG_HOST, PG_PORT), "make run must not stop a PostgreSQL it did not start"
    assert port_open("127.0.0.1", 5672), "make run must not stop a RabbitMQ it did not start"
    # Its database belongs to Hostmaster's own role, whose password the API read from the secrets directory.
    password = RUN_DIR / "secrets" / "hostmaster_database_password"
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    with pg_connect("postgres") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (DATABASE,))
        assert cursor.fetchone() == (os.environ.get("PG_USER", "hostmaster"),)
