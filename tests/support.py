"""What the tests share that is not a fixture: the services' places, waiting, the CLI, processes.

The fixtures that start PostgreSQL's database, RabbitMQ's queue, BIND 9, Kafka, the API and the
workers are in tests/conftest.py; tests import the helpers from here."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
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


@dataclass
class Kafka:
    bootstrap: str
    topic: str
    dlq: str
    results: str


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


def unique_label(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for_terminal(client: httpx.Client, request_id: str, timeout: float = 30) -> dict[str, Any]:
    def terminal() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/v1/requests/{request_id}").json()
        return body if body["status"] in ("succeeded", "failed", "rejected") else None

    result: dict[str, Any] = wait_until(terminal, timeout=timeout, what=f"request {request_id} to end", interval=0.2)
    return result
