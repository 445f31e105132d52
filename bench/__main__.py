"""`make bench`: every benchmark against a Hostmaster of its own, each beside its baseline in
the same run. Writes bench/results/latest.json and the table in docs/performance.md.

    uv run --frozen python -m bench [--records 5000] [--quick]

Not a test: nothing here passes or fails; it measures, prints and records.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.query
import dns.tsigkeyring
import dns.zone
import httpx
from kafka import KafkaConsumer, KafkaProducer

from bench import cpu, load, raw
from bench.stack import KEY, ROOT, RUN_DIR, ZONE, Stack, say

RESULTS = ROOT / "bench" / "results" / "latest.json"
DOCUMENT = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin (written by `make bench`) -->", "<!-- bench:end -->"
TERMINAL = ("succeeded", "failed", "rejected")


def main() -> int:
    parser = argparse.ArgumentParser(description="Hostmaster benchmarks")
    parser.add_argument("--records", type=int, default=5000, help="requests, records and events per e2e benchmark")
    parser.add_argument("--seconds", type=int, default=10, help="length of each ingest benchmark")
    parser.add_argument("--phase-timeout", type=float, default=150.0, help="longest wait for one benchmark to drain")
    args = parser.parse_args()
    stack = Stack()
    results: dict[str, Any] = {}
    try:
        stack.start()
        _run(stack, args, results)
    finally:
        stack.stop()
    results["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["machine"] = f"{platform.node()} ({_cores()} cores)"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    table = _table(results)
    print(table)
    if DOCUMENT.exists():
        text = DOCUMENT.read_text()
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
        DOCUMENT.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text))
    return 0


def _run(stack: Stack, args: argparse.Namespace, results: dict[str, Any]) -> None:
    count = args.records
    say(f"raw baselines: {min(count, 2000)} single updates, {count} records 500 per UPDATE")
    results["raw_single_updates_per_s"] = round(
        raw.single_updates_per_s(ZONE, KEY, stack.secret, stack.bind_port, min(count, 2000)), 1
    )
    results["raw_batched_records_per_s"] = round(
        raw.batched_records_per_s(ZONE, KEY, stack.secret, stack.bind_port, count), 1
    )

    say(f"changeset_{count}: one v2 change set of {count} new records")
    results[f"changeset_{count}_s"] = _changeset(stack, count, args.phase_timeout)

    say(f"e2e_single: {count} single-record requests, as fast as they are accepted")
    spent: dict[str, float] = {}
    roots = {name: process.pid for name, process in stack.processes.items() if name != "consumer"}
    with cpu.measured(roots, _bind_pid(), spent):
        ids, first = _submit(stack, "e2e", count, rate=None)
        done = _wait_for(stack, ids, args.phase_timeout)
    timings = _timings(stack, ids)
    if done and timings:
        results["e2e_records_per_s"] = round(len(ids) / (max(end for _, end in timings) - first), 1)
        results["cpu_ms_per_request"] = {name: round(seconds * 1000 / len(ids), 2) for name, seconds in spent.items()}
        results["e2e_served"] = _served(stack, "e2e-") == len(ids)
    else:
        results["e2e_records_per_s"] = round(len(timings) / args.phase_timeout, 1)
        results["e2e_note"] = f"{len(timings)} of {len(ids)} succeeded within {args.phase_timeout:.0f} s"
    results["e2e_vs_raw_single"] = round(results["e2e_records_per_s"] / results["raw_single_updates_per_s"], 3)

    offered = 50
    _settle(stack, args.phase_timeout)
    say(f"e2e latency at {offered}/s offered for {args.seconds * 2} s")
    ids, _ = _submit(stack, "lat", offered * args.seconds * 2, rate=offered)
    _wait_for(stack, ids, args.phase_timeout)
    latencies = [end - start for start, end in _timings(stack, ids)]
    results["e2e_p50_s"] = round(load.percentile(latencies, 0.5), 3)
    results["e2e_p99_s"] = round(load.percentile(latencies, 0.99), 3)

    rate = 300
    _settle(stack, args.phase_timeout)
    say(f"ingest at {rate}/s offered for {args.seconds} s")
    sent = load.Load(stack.api_url, stack.admin_key).run(rate * args.seconds, _create("ing"), rate=rate)
    accepted = [item for item in sent if item.status == 202]
    results["ingest_p50_ms"] = round(load.percentile([item.latency_s * 1000 for item in accepted], 0.5), 1)
    results["ingest_p99_ms"] = round(load.percentile([item.latency_s * 1000 for item in accepted], 0.99), 1)
    results["ingest_errors_at_300"] = len(sent) - len(accepted)

    say(f"ingest at saturation for {args.seconds} s (wrk, 32 connections)")
    saturation = load.saturate(
        stack.api_url, stack.admin_key, f"sat{uuid.uuid4().hex[:6]}", seconds=args.seconds, connections=32
    )
    results["ingest_rps"] = round(saturation.requests_per_s, 1)
    results["ingest_saturation_p99_ms"] = round(saturation.p99_ms, 1)
    results["ingest_saturation_errors"] = saturation.errors

    _settle(stack, args.phase_timeout)  # the ingest's requests are applied before the events start
    say(f"kafka: {count} events")
    results["kafka_events_per_s"] = _kafka(stack, count, args.phase_timeout)


def _create(prefix: str) -> load.Body:
    run = uuid.uuid4().hex[:6]

    def body(index: int) -> tuple[str, str, dict[str, object]]:
        name = f"{prefix}-{run}-{index}.{ZONE}"
        return "POST", "/api/v1/records", {"name": name, "type": "A", "values": [f"192.0.2.{index % 250 + 1}"]}

    return body


def _submit(stack: Stack, prefix: str, count: int, rate: float | None) -> tuple[list[str], float]:
    first = time.time()
    sent = load.Load(stack.api_url, stack.admin_key).run(count, _create(prefix), rate=rate)
    ids = [item.request_id for item in sent if item.request_id]
    if len(ids) != count:
        say(f"{count - len(ids)} of {count} were not accepted")
    return ids, first


def _wait_for(stack: Stack, ids: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    with stack.connect() as connection, connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM request WHERE id = ANY(%s::uuid[]) AND status IN %s", (ids, TERMINAL))
            ended = cursor.fetchone()[0]
            connection.commit()
            if ended == len(ids):
                return True
            time.sleep(0.5)
    say(f"not every request ended within {timeout:.0f} s")
    return False


def _settle(stack: Stack, timeout: float) -> None:
    """Wait until no request is left open, so that one benchmark's backlog does not load the next."""
    deadline = time.monotonic() + timeout
    with stack.connect() as connection, connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM request WHERE status NOT IN %s", (TERMINAL,))
            left = cursor.fetchone()[0]
            connection.commit()
            if left == 0:
                return
            say(f"waiting for {left} open requests to end before the next benchmark")
            time.sleep(5)
    say(f"requests were still open after {timeout:.0f} s; the next figures carry their load")


def _timings(stack: Stack, ids: list[str]) -> list[tuple[float, float]]:
    """(came, succeeded) as Unix times, for each request that succeeded."""
    with stack.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM r.created_at), extract(epoch FROM max(e.at)) FROM request r"
            " JOIN request_event e ON e.request_id = r.id AND e.step = 'succeeded'"
            " WHERE r.id = ANY(%s::uuid[]) GROUP BY r.id",
            (ids,),
        )
        return [(float(came), float(ended)) for came, ended in cursor.fetchall()]


def _served(stack: Stack, prefix: str) -> int:
    keyring = dns.tsigkeyring.from_text({KEY: stack.secret})
    zone = dns.zone.from_xfr(
        dns.query.xfr("127.0.0.1", ZONE, port=stack.bind_port, keyring=keyring, keyalgorithm="hmac-sha256", lifetime=60)
    )
    return sum(1 for name in zone.nodes if name.to_text().startswith(prefix))


def _changeset(stack: Stack, count: int, timeout: float) -> float | None:
    run = uuid.uuid4().hex[:6]
    changes = [
        {"op": "create", "name": f"cs-{run}-{index}.{ZONE}", "type": "A", "values": [f"198.51.100.{index % 250 + 1}"]}
        for index in range(count)
    ]
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    started = time.perf_counter()
    answer = httpx.post(
        f"{stack.api_url}/api/v2/zones/{ZONE}/changes", json={"changes": changes}, headers=headers, timeout=120
    )
    answer.raise_for_status()
    status_url = answer.json()["status_url"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(status_url, headers=headers, timeout=30).json()["status"]
        if status in TERMINAL:
            elapsed = time.perf_counter() - started
            served = _served(stack, f"cs-{run}-")
            say(f"change set {status} in {elapsed:.2f} s; {served} of {count} served")
            return round(elapsed, 2) if status == "succeeded" and served == count else None
        time.sleep(0.05)
    return None


def _kafka(stack: Stack, count: int, timeout: float) -> float | None:
    run = uuid.uuid4().hex[:6]
    reader = KafkaConsumer(
        "dns.requests.results",
        bootstrap_servers=stack.kafka,
        group_id=f"bench-{run}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
    )
    reader.poll(timeout_ms=2000)  # join the group before the clock starts
    producer = KafkaProducer(bootstrap_servers=stack.kafka, acks="all", linger_ms=5)
    started = time.monotonic()
    for index in range(count):
        event = {
            "schema_version": 1,
            "event_id": f"bench-{run}-{index}",
            "operation": "record.create",
            "body": {"name": f"k-{run}-{index}.{ZONE}", "type": "TXT", "values": [f"event {index}"]},
        }
        producer.send("dns.requests", json.dumps(event).encode())
    producer.flush(timeout=60)
    producer.close()
    done: set[str] = set()
    deadline = started + timeout
    while time.monotonic() < deadline and len(done) < count:
        for records in reader.poll(timeout_ms=500).values():
            for record in records:
                value = json.loads(record.value)
                if str(value.get("event_id", "")).startswith(f"bench-{run}-") and value.get("status") == "succeeded":
                    done.add(value["event_id"])
    elapsed = time.monotonic() - started
    reader.close()
    if len(done) < count:
        say(f"kafka: {len(done)} of {count} succeeded within {timeout:.0f} s")
    return round(len(done) / elapsed, 1)


def _bind_pid() -> int | None:
    path = RUN_DIR / "bind" / "named.pid.launcher"
    return int(path.read_text()) if path.exists() else None


def _cores() -> int:
    return len([line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("processor")])


ROWS = [
    ("raw_single_updates_per_s", "raw: sequential single-record TSIG updates (dnspython)", "/s", None),
    ("raw_batched_records_per_s", "raw: records, 500 per UPDATE over one TCP connection", "/s", None),
    ("ingest_rps", "ingest: v1 POSTs accepted at saturation", "/s", "≥ 600"),
    ("ingest_p50_ms", "ingest: p50 at 300/s offered", " ms", None),
    ("ingest_p99_ms", "ingest: p99 at 300/s offered", " ms", "< 50"),
    ("e2e_records_per_s", "e2e_single: records/s, first submit to last succeeded", "/s", None),
    ("e2e_vs_raw_single", "e2e_single ÷ raw sequential", "", "≥ 0.5"),
    ("e2e_p50_s", "e2e: p50 submit→succeeded at 50/s offered", " s", "< 0.25"),
    ("e2e_p99_s", "e2e: p99 submit→succeeded at 50/s offered", " s", None),
    ("changeset_5000_s", "changeset: 5,000 new records until succeeded and served", " s", "< 3"),
    ("kafka_events_per_s", "kafka: events on the topic to succeeded", "/s", "≥ 500"),
]


def _table(results: dict[str, Any]) -> str:
    lines = ["| benchmark | measured | target |", "|---|---:|---|"]
    for key, label, unit, target in ROWS:
        value = results.get(key)
        lines.append(f"| {label} | {'—' if value is None else f'{value}{unit}'} | {target or ''} |")
    spent = results.get("cpu_ms_per_request") or {}
    if spent:
        lines.append("")
        lines.append(
            "CPU milliseconds per e2e_single request, by process: " + ", ".join(f"{k} {v}" for k, v in spent.items())
        )
    lines.append("")
    lines.append(f"Measured {results.get('measured_at')} on {results.get('machine')}.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
