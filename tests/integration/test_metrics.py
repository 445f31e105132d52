"""Prometheus metrics as a scraper sees them: the API's HTTP traffic by route template and
status, the workers' messages and DNS update latency, the consumer's events."""

from __future__ import annotations

import random
import re
import socket
import string
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support import (
    ZONE,
    Process,
    free_port,
    rabbitmq_connection,
    start_api,
    start_process,
    unique_label,
    wait_for_terminal,
    wait_until,
)

pytestmark = pytest.mark.integration


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels``; None when there is none."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if labels.items() <= found.items():
            return float(match.group(3))
    return None


@pytest.fixture(scope="module")
def metered(stack: httpx.Client, stack_env: dict[str, str], admin_key: str) -> Iterator[tuple[httpx.Client, str]]:
    """An API and a worker of their own queue, the worker serving its metrics on a free port."""
    queue = f"hostmaster_metrics_{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {**stack_env, "HOSTMASTER_QUEUE_NAME": queue, "HOSTMASTER_METRICS_PORT": str(port)}
    api = start_api("api-metrics", env)
    worker = start_process("worker-metrics", ["-m", "workers", "--processes", "1", "--threads", "2"], env)
    processes: list[Process] = [api, worker]
    try:
        wait_until(lambda: "ready for action" in worker.log_path.read_text(), timeout=60, what="the metered worker")
        with httpx.Client(base_url=api.url, timeout=10, headers={"Authorization": f"Bearer {admin_key}"}) as http:
            yield http, f"http://127.0.0.1:{port}/metrics"
    finally:
        for process in processes:
            process.stop()
        connection = rabbitmq_connection()
        for suffix in ("", ".DQ", ".XQ"):
            connection.channel().queue_delete(queue + suffix)
        connection.close()


def test_the_api_counts_requests_by_route_template_and_status(metered: tuple[httpx.Client, str]) -> None:
    http, _ = metered
    name = f"{unique_label('metric')}.{ZONE}"
    for _ in range(3):
        assert http.get(f"/api/v1/records/{name}/A").status_code == 404
    assert http.put(f"/api/v1/records/{name}/A", json={"values": ["192.0.2.1"]}).status_code == 202

    text = http.get("/metrics").text

    route = "/api/v1/records/{name}/{type}"
    assert sample(text, "hostmaster_http_requests_total", method="GET", route=route, status="404") == 3
    assert sample(text, "hostmaster_http_requests_total", method="PUT", route=route, status="202") == 1
    assert sample(text, "hostmaster_http_request_duration_seconds_count", method="PUT", route=route) == 1
    assert name not in text  # templates, never the paths clients sent
    assert sample(text, "hostmaster_requests", status="queued") is not None


def test_the_workers_count_messages_per_actor_and_time_dns_updates(metered: tuple[httpx.Client, str]) -> None:
    http, worker_metrics = metered
    answer = http.post(
        "/api/v1/records", json={"name": f"{unique_label('m')}.{ZONE}", "type": "A", "values": ["192.0.2.9"]}
    )
    assert wait_for_terminal(http, answer.json()["request_id"])["status"] == "succeeded"

    def scraped() -> str | None:
        text = httpx.get(worker_metrics, timeout=5).text
        done = sample(text, "dramatiq_messages_total", actor_name="apply_request")
        return text if done is not None and done >= 1 else None

    text = wait_until(scraped, timeout=30, what="the worker's metrics to count the message")
    assert sample(text, "dramatiq_message_errors_total", actor_name="apply_request") in (None, 0.0)
    assert (sample(text, "hostmaster_dns_update_seconds_count", outcome="ok") or 0) >= 1


def test_methods_a_client_makes_up_do_not_grow_the_metrics(metered: tuple[httpx.Client, str]) -> None:
    api, _ = metered
    before = api.get("/metrics").text
    host, port = api.base_url.host, api.base_url.port or 80
    # httptools refuses a made-up method itself (400); the methods it knows beyond HTTP's own
    # (WebDAV's and others) reach the app, and h11 would pass any token on: none is a label.
    made_up = ["".join(random.choices(string.ascii_uppercase, k=4096)) for _ in range(10)]
    known_to_the_parser = ["PROPFIND", "MKCOL", "PURGE", "SEARCH", "REPORT", "MKCALENDAR", "LINK", "UNLOCK"]
    for method in made_up + known_to_the_parser:  # no key needed: anyone can send these
        with socket.create_connection((host, port), timeout=5) as connection:
            connection.sendall(f"{method} /healthz HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n".encode())
            assert connection.recv(1024).startswith(b"HTTP/1.1 ")

    after = api.get("/metrics").text

    assert len(after) - len(before) < 5_000, f"/metrics grew from {len(before)} to {len(after)} bytes"
    assert not any(method in after for method in made_up + known_to_the_parser)
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in after.splitlines()
        if line.startswith('hostmaster_http_requests_total{method="OTHER"')
    )
    assert counted >= len(known_to_the_parser)
