"""One fixture per real system: PostgreSQL, RabbitMQ, BIND 9, and the API and worker processes.

Integration tests skip when a service is missing on a developer's machine and fail in CI
(CI=true). `make test` installs and starts what is missing first, so nothing skips there.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pika
import psycopg2
import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_RUN_DIR = Path(os.environ.get("TEST_RUN_DIR") or ROOT / ".run" / "test")  # one per concurrent run
PG_HOST = os.environ.get("PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PG_PORT", "5432"))
# The role the tests connect as: scripts/test.sh makes Hostmaster's own (not a superuser) and
# exports its password as PGPASSWORD, which libpq reads; run directly, the machine's postgres.
PG_USER = os.environ.get("PG_USER", "postgres")
RABBITMQ_PORT = int(os.environ.get("RABBITMQ_PORT", "5672"))
TEST_DATABASE = f"hostmaster_test_{os.getpid()}"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The zones the tests register; stale.test's key is given a wrong secret on our side.
ZONE = "example.test"
STALE_ZONE = "stale.test"
DOWN_ZONE = "down.test"
REVERSE4_ZONE = "2.0.192.in-addr.arpa"  # 192.0.2.0/24 (RFC 5737)
REVERSE6_ZONE = "8.b.d.0.1.0.0.2.ip6.arpa"  # 2001:db8::/32 (RFC 3849)
OVERRIDE_ZONE = "override.test"  # drift policy: override
GUARD_ZONE = "guard.test"  # for the mass-change guard
BULK_ZONE = "bulk.test"  # for large change sets
GONE_ZONE = "gone.test"  # unregistered by a test
RECONCILE_ZONE = "reconcile.test"  # for reconciliation: changed behind Hostmaster's back
REPAIR_ZONE = "repair.test"  # reconcile policy: repair
SERVED_ZONES = (
    ZONE,
    REVERSE4_ZONE,
    REVERSE6_ZONE,
    OVERRIDE_ZONE,
    GUARD_ZONE,
    BULK_ZONE,
    GONE_ZONE,
    RECONCILE_ZONE,
    REPAIR_ZONE,
)
POLICIES: dict[str, dict[str, str]] = {
    OVERRIDE_ZONE: {"drift_policy": "override"},
    REPAIR_ZONE: {"reconcile": "repair"},
}
KEY = "hostmaster-key"
STALE_KEY = "stale-key"
WRONG_SECRET = "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE="
TEST_PEPPER = secrets.token_urlsafe(32)


def unavailable(what: str) -> None:
    """Skip on a developer's machine, fail in CI: CI must run every test."""
    if IN_CI:
        pytest.fail(f"{what} is not available, and CI must run the integration tests")
    pytest.skip(f"{what} is not available (run `make test` to start it)")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid``, from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(child) for child in text.split()]
    return found


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


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


def pg_url(database: str) -> str:
    """The SQLAlchemy URL of ``database`` as the tests' role (its password: PGPASSWORD)."""
    return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def pg_connect(database: str) -> Any:
    """A psycopg2 connection to ``database`` as the tests' role."""
    return psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database, connect_timeout=5)


def as_admin(*statements: str) -> None:
    admin = pg_connect("postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        admin.close()


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


def rabbitmq_connection() -> pika.BlockingConnection:
    parameters = pika.ConnectionParameters(
        host="127.0.0.1",
        port=RABBITMQ_PORT,
        credentials=pika.PlainCredentials("guest", "guest"),
        socket_timeout=5,
        connection_attempts=1,
    )
    return pika.BlockingConnection(parameters)


def dead_lettered(queue_name: str) -> set[str]:
    """The request ids of the messages in ``queue_name``'s dead-letter queue (read, then put back)."""
    connection = rabbitmq_connection()
    channel = connection.channel()
    found = set()
    while True:
        method, _properties, body = channel.basic_get(f"{queue_name}.XQ", auto_ack=False)
        if method is None:
            break
        found.add(json.loads(body)["args"][0])
    connection.close()  # unacknowledged messages go back to the queue
    return found


@dataclass
class Bind:
    host: str
    port: int
    directory: Path

    def secret(self, key: str) -> str:
        return (self.directory / "secrets" / "tsig" / key).read_text().strip()


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


@dataclass
class Kafka:
    bootstrap: str
    topic: str
    dlq: str
    results: str


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


@dataclass
class Process:
    name: str
    log_path: Path
    popen: subprocess.Popen[bytes]
    url: str = ""

    def log_lines(self) -> list[dict[str, Any]]:
        """Every line the process has logged so far, parsed; a line that is not JSON fails the test."""
        lines = []
        for raw in self.log_path.read_text().splitlines():
            if raw.strip():
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    raise AssertionError(f"{self.name} logged a line that is not JSON: {raw!r}") from None
        return lines

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def start_process(name: str, args: list[str], env: dict[str, str]) -> Process:
    TEST_RUN_DIR.mkdir(parents=True, exist_ok=True)
    log_path = TEST_RUN_DIR / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, log_path, popen)


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


def hostmaster(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The `hostmaster` command, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def make_client(env: dict[str, str], name: str, *grants: str, scopes: tuple[str, ...] = ("read", "write")) -> str:
    """A new API client made with the CLI; its key."""
    args = [arg for scope in scopes for arg in ("--scope", scope)] + [
        arg for zone in grants for arg in ("--zone", zone)
    ]
    result = hostmaster(env, "clients", "create", name, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="session")
def admin_key(stack_env: dict[str, str]) -> str:
    return make_client(stack_env, "test-admin", "*", scopes=("admin",))


def start_api(name: str, env: dict[str, str], port: int | None = None) -> Process:
    """An API as `python -m service` on ``port`` (a free one by default), once it answers /healthz."""
    port = port or free_port()
    process = start_process(name, ["-m", "service", "--port", str(port)], env)
    process.url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"the API {name} exited at start:\n{process.log_path.read_text()}")
        try:
            return httpx.get(f"{process.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=30, what=f"the API {name} to answer /healthz")
    return process


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


def unique_label(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for_terminal(client: httpx.Client, request_id: str, timeout: float = 30) -> dict[str, Any]:
    def terminal() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/v1/requests/{request_id}").json()
        return body if body["status"] in ("succeeded", "failed", "rejected") else None

    result: dict[str, Any] = wait_until(terminal, timeout=timeout, what=f"request {request_id} to end", interval=0.2)
    return result
