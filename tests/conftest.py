"""One fixture per real system: PostgreSQL's database, RabbitMQ's queue, BIND 9, a Kafka broker,
and the API and worker processes, each started once per session by the project's own scripts
and stopped at its end; their helpers are in tests/support.py.

Integration tests skip when a service is missing on a developer's machine and fail in CI
(CI=true). `make test` installs and starts what is missing first, so nothing skips there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import (
    DOWN_ZONE,
    KEY,
    PG_HOST,
    PG_PORT,
    POLICIES,
    RABBITMQ_PORT,
    ROOT,
    SERVED_ZONES,
    STALE_KEY,
    STALE_ZONE,
    TEST_DATABASE,
    TEST_PEPPER,
    TEST_RUN_DIR,
    WRONG_SECRET,
    Bind,
    Kafka,
    Process,
    as_admin,
    free_port,
    make_client,
    pg_url,
    port_open,
    rabbitmq_connection,
    start_api,
    start_process,
    unavailable,
    wait_until,
)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh, migrated database for this test session, by the real `alembic upgrade head`."""
    if not port_open(PG_HOST, PG_PORT):
        unavailable(f"PostgreSQL on {PG_HOST}:{PG_PORT}")
    as_admin(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)', f'CREATE DATABASE "{TEST_DATABASE}"')
    url = pg_url(TEST_DATABASE)
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "HOSTMASTER_DATABASE_URL": url},
        check=True,
        capture_output=True,
        timeout=120,
    )
    yield url
    as_admin(
        f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)'
    )  # a new connection: PostgreSQL may have restarted


@pytest.fixture(scope="session")
def queue_name() -> Iterator[str]:
    """A queue of this session's own, so a running `make run` never takes the tests' messages."""
    if not port_open("127.0.0.1", RABBITMQ_PORT):
        unavailable(f"RabbitMQ on 127.0.0.1:{RABBITMQ_PORT}")
    name = f"hostmaster_test_{uuid.uuid4().hex[:8]}"
    yield name
    connection = rabbitmq_connection()
    channel = connection.channel()
    for suffix in ("", ".DQ", ".XQ"):
        channel.queue_delete(name + suffix)
    connection.close()


@pytest.fixture(scope="session")
def bind() -> Iterator[Bind]:
    """BIND 9 on loopback with the test zones, started by the project's own script."""
    if shutil.which("named") is None:
        unavailable("BIND 9 (named)")
    directory = TEST_RUN_DIR / "bind"
    script = ROOT / "scripts" / "bind.sh"
    # down.test is served too, but registered at a closed port: it is "down" until a test points it here.
    specs = [*(f"{zone}:{KEY}" for zone in SERVED_ZONES), f"{STALE_ZONE}:{STALE_KEY}", f"{DOWN_ZONE}:{KEY}"]
    port = free_port()
    subprocess.run(["bash", str(script), "stop", str(directory)], check=True, timeout=30)
    shutil.rmtree(directory, ignore_errors=True)  # zone data of an earlier session must not leak in
    subprocess.run(["bash", str(script), "start", str(directory), str(port), *specs], check=True, timeout=60)
    yield Bind("127.0.0.1", port, directory)
    subprocess.run(["bash", str(script), "stop", str(directory)], check=True, timeout=30)


@pytest.fixture(scope="session")
def kafka() -> Iterator[Kafka]:
    """A Kafka-protocol broker (Tansu) started by scripts/kafka.sh, with this session's topics."""
    directory = TEST_RUN_DIR / "kafka"
    script = ROOT / "scripts" / "kafka.sh"
    port = free_port()
    subprocess.run(["bash", str(script), "start", str(directory), str(port)], check=True, timeout=120)
    suffix = uuid.uuid4().hex[:8]
    found = Kafka(
        f"127.0.0.1:{port}", f"dns.requests.{suffix}", f"dns.requests.dlq.{suffix}", f"dns.requests.results.{suffix}"
    )
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=found.bootstrap, request_timeout_ms=15_000)
    admin.create_topics([NewTopic(topic, 1, 1) for topic in (found.topic, found.dlq, found.results)])
    admin.close()
    yield found
    subprocess.run(["bash", str(script), "stop", str(directory)], check=True, timeout=30)


@pytest.fixture(scope="session")
def producer(kafka: Kafka) -> Iterator[Any]:
    """A producer as a team's would be: acks=all."""
    from kafka import KafkaProducer

    made = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    yield made
    made.close()


@pytest.fixture(scope="session")
def stack_env(database_url: str, queue_name: str, bind: Bind, kafka: Kafka) -> dict[str, str]:
    """The environment of the API and worker processes under test: a tiny retry budget."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOSTMASTER_")}
    env.update(
        APP_ENV="dev",
        HOSTMASTER_DATABASE_URL=database_url,
        HOSTMASTER_QUEUE_NAME=queue_name,
        HOSTMASTER_SECRETS_DIR=str(bind.directory / "secrets"),
        HOSTMASTER_TSIG_SECRET_STALE_KEY=WRONG_SECRET,
        HOSTMASTER_MAX_RETRIES="2",
        HOSTMASTER_MIN_BACKOFF_MS="200",
        HOSTMASTER_MAX_BACKOFF_MS="1000",
        HOSTMASTER_DNS_TIMEOUT_S="2",
        HOSTMASTER_LOG_LEVEL="INFO",
        HOSTMASTER_API_PEPPER=TEST_PEPPER,
        HOSTMASTER_RATE_LIMIT_PER_S="1000",
        HOSTMASTER_RATE_LIMIT_BURST="2000",
        HOSTMASTER_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
        HOSTMASTER_KAFKA_TOPIC=kafka.topic,
        HOSTMASTER_KAFKA_DLQ_TOPIC=kafka.dlq,
        HOSTMASTER_KAFKA_RESULTS_TOPIC=kafka.results,
        HOSTMASTER_KAFKA_SESSION_TIMEOUT_MS="6000",
        HOSTMASTER_METRICS_PORT="0",  # off: many workers and consumers run at once; a test turns it on
    )
    return env


@pytest.fixture(scope="session")
def admin_key(stack_env: dict[str, str]) -> str:
    return make_client(stack_env, "test-admin", "*", scopes=("admin",))


@pytest.fixture(scope="session")
def api(stack_env: dict[str, str]) -> Iterator[Process]:
    """The API the tests call; its base URL is ``api.url``."""
    process = start_api("api", stack_env)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def worker(stack_env: dict[str, str]) -> Iterator[Process]:
    process = start_process("worker", ["-m", "workers", "--processes", "1", "--threads", "4"], stack_env)
    wait_until(
        lambda: process.popen.poll() is None and "ready for action" in process.log_path.read_text(),
        timeout=30,
        what="the worker to start",
    )
    yield process
    process.stop()


@pytest.fixture(scope="session")
def client(api: Process, admin_key: str) -> Iterator[httpx.Client]:
    """An admin's client of the API under test."""
    with httpx.Client(base_url=api.url, timeout=10, headers={"Authorization": f"Bearer {admin_key}"}) as http:
        yield http


@pytest.fixture(scope="session")
def zones(client: httpx.Client, bind: Bind) -> dict[str, str]:
    """The test zones, registered through the admin endpoint."""
    closed_port = free_port()
    registered = {}
    for name, port, key in (
        *((zone, bind.port, KEY) for zone in SERVED_ZONES),
        (STALE_ZONE, bind.port, STALE_KEY),
        (DOWN_ZONE, closed_port, KEY),
    ):
        policy = POLICIES.get(name, {})
        answer = client.post(
            "/api/v1/zones",
            json={"name": name, "primary_host": bind.host, "primary_port": port, "tsig_key_name": key, **policy},
        )
        assert answer.status_code == 201, answer.text
        registered[name] = answer.json()["name"]
    return registered


@pytest.fixture(scope="session")
def stack(client: httpx.Client, zones: dict[str, str], worker: Process) -> httpx.Client:
    """An API client with the whole pipeline running behind it."""
    return client
