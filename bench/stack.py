"""A Hostmaster of the benchmark's own: a fresh database and queue, BIND 9 with the zone
bench.test (and any zones of the peer's own, which Hostmaster does not know), a Kafka-protocol
broker, the API (``api_processes`` uvicorn processes, 3 by default), the workers and the
consumer, all under .run/bench, all stopped at the end. Nothing of `make run` is touched."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pika
import psycopg2

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run" / "bench"
ZONE = "bench.test"
KEY = "bench-key"
DATABASE = "hostmaster_bench"
PG_USER = os.environ.get("PG_USER", "postgres")  # scripts/bench.sh: Hostmaster's own role, its password in PGPASSWORD
API_PROCESSES = 3
WORKER_ARGS = ["--processes", "2", "--threads", "8"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class Stack:
    bind_port: int = field(default_factory=free_port)
    kafka_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    queue: str = field(default_factory=lambda: f"hostmaster_bench_{uuid.uuid4().hex[:8]}")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    admin_key: str = ""
    api_processes: int = API_PROCESSES
    other_zones: tuple[str, ...] = ()  # ZONE:KEY specs served by the same BIND, not registered in Hostmaster
    api_env: dict[str, str] = field(default_factory=dict)  # HOSTMASTER_* settings of the API's only

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def kafka(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def secret(self) -> str:
        return self.secret_of(KEY)

    def secret_of(self, key: str) -> str:
        return (RUN_DIR / "bind" / "secrets" / "tsig" / key).read_text().strip()

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HOSTMASTER_")}
        env.update(
            APP_ENV="dev",
            HOSTMASTER_DATABASE_URL=f"postgresql+psycopg2://{PG_USER}@127.0.0.1:5432/{DATABASE}",
            HOSTMASTER_QUEUE_NAME=self.queue,
            HOSTMASTER_SECRETS_DIR=str(RUN_DIR / "bind" / "secrets"),
            HOSTMASTER_LOG_LEVEL="INFO",
            HOSTMASTER_RATE_LIMIT_PER_S="1000000",
            HOSTMASTER_RATE_LIMIT_BURST="1000000",
            HOSTMASTER_KAFKA_BOOTSTRAP_SERVERS=self.kafka,
            HOSTMASTER_METRICS_PORT="0",
            HOSTMASTER_API_URL=self.api_url,
            HOSTMASTER_RECONCILE_INTERVAL_S="0",
        )
        env.update(extra)
        return env

    def start(self) -> None:
        shutil.rmtree(RUN_DIR, ignore_errors=True)
        RUN_DIR.mkdir(parents=True)
        say(f"BIND 9 on 127.0.0.1:{self.bind_port}, zone {ZONE}; the API as {self.api_processes} processes")
        _script("bind.sh", "start", str(RUN_DIR / "bind"), str(self.bind_port), f"{ZONE}:{KEY}", *self.other_zones)
        _script("kafka.sh", "start", str(RUN_DIR / "kafka"), str(self.kafka_port))
        self._database()
        self.admin_key = _cli(self.env(), "clients", "create", "bench-admin", "--scope", "admin", "--zone", "*")
        _cli(self.env(), "zone", "add", ZONE, "--primary", f"127.0.0.1:{self.bind_port}", "--key", KEY)
        consumer_key = _cli(self.env(), "clients", "create", "bench-kafka", "--scope", "write", "--zone", "*")
        self._topics()
        self.processes["api"] = _start(
            "api",
            ["-m", "service.cli", "run", "api", "--port", str(self.api_port), "--workers", str(self.api_processes)],
            self.env(**self.api_env),
        )
        self.processes["worker"] = _start("worker", ["-m", "workers", *WORKER_ARGS], self.env())
        self.processes["consumer"] = _start(
            "consumer", ["-m", "consumer"], self.env(HOSTMASTER_CONSUMER_API_KEY=consumer_key)
        )
        _wait(lambda: httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200, "the API")
        _wait(lambda: "ready for action" in (RUN_DIR / "worker.log").read_text(), "the workers")

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        _script("bind.sh", "stop", str(RUN_DIR / "bind"))
        _script("kafka.sh", "stop", str(RUN_DIR / "kafka"))
        connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", socket_timeout=5))
        for suffix in ("", ".DQ", ".XQ"):
            connection.channel().queue_delete(self.queue + suffix)
        connection.close()

    def connect(self) -> psycopg2.extensions.connection:
        return psycopg2.connect(host="127.0.0.1", user=PG_USER, dbname=DATABASE, connect_timeout=5)

    def _database(self) -> None:
        admin = psycopg2.connect(host="127.0.0.1", user=PG_USER, dbname="postgres", connect_timeout=5)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{DATABASE}"')
        admin.close()
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def _topics(self) -> None:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.kafka, request_timeout_ms=15_000)
        topics = ("dns.requests", "dns.requests.dlq", "dns.requests.results")
        admin.create_topics([NewTopic(topic, 1, 1) for topic in topics])
        admin.close()


def _script(name: str, *args: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / name), *args], check=True, timeout=120, capture_output=True)


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"hostmaster {' '.join(args)}: {result.stderr}")
    return result.stdout.strip()


def _start(name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (RUN_DIR / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait(ready: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():  # type: ignore[operator]
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s; see {RUN_DIR}")
