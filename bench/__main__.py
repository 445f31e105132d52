"""`make bench`: every benchmark against a Hostmaster of its own, each beside its baseline in
the same run. Writes bench/results/latest.json and the table in docs/performance.md.

    uv run --frozen python -m bench [--records 5000] [--api-processes 3] [--budget 480] [--no-peer]

Not a test: nothing here passes or fails; it measures, prints and records.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dns.query
import dns.tsigkeyring
import dns.zone
import httpx
from kafka import KafkaConsumer, KafkaProducer

from bench import cpu, floor, load, peer, raw
from bench.stack import API_PROCESSES, KEY, ROOT, RUN_DIR, ZONE, Stack, say

RESULTS = ROOT / "bench" / "results" / "latest.json"
DOCUMENT = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin (written by `make bench`) -->", "<!-- bench:end -->"
TERMINAL = ("succeeded", "failed", "rejected")


def main() -> int:
    parser = argparse.ArgumentParser(description="Hostmaster benchmarks")
    parser.add_argument("--records", type=int, default=5000, help="requests, records and events per e2e benchmark")
    parser.add_argument("--seconds", type=int, default=10, help="length of each ingest benchmark")
    parser.add_argument("--phase-timeout", type=float, default=150.0, help="longest wait for one benchmark to drain")
    parser.add_argument(
        "--budget", type=float, default=480.0, help="seconds for the whole run; a phase that does not fit is skipped"
    )
    parser.add_argument("--api-processes", type=int, default=API_PROCESSES, help="uvicorn processes of the API")
    parser.add_argument("--no-peer", action="store_true", help="leave octoDNS out")
    parser.add_argument(
        "--write-group-max",
        type=int,
        default=None,
        help="the API's HOSTMASTER_WRITE_GROUP_MAX (1: every v1 write alone, to measure without group commit)",
    )
    parser.add_argument(
        "--no-quotas",
        action="store_true",
        help="the API without default quotas (HOSTMASTER_QUOTA_*=none), to measure what counting them costs",
    )
    args = parser.parse_args()
    budget = Budget(time.perf_counter() + args.budget)
    api_env = {} if args.write_group_max is None else {"HOSTMASTER_WRITE_GROUP_MAX": str(args.write_group_max)}
    if args.no_quotas:  # the Kafka client is not an admin: its events are counted against its quotas
        api_env.update(HOSTMASTER_QUOTA_RRSETS="none", HOSTMASTER_QUOTA_CHANGES_PER_DAY="none")
    stack = Stack(
        api_processes=args.api_processes,
        other_zones=tuple(f"{zone}:{peer.KEY}" for zone in peer.ZONES),
        api_env=api_env,
    )
    results: dict[str, Any] = {"records": args.records, "api_processes": args.api_processes, **api_env}
    started = time.perf_counter()
    try:
        stack.start()
        _run(stack, args, budget, results)
    finally:
        stack.stop()
    results["bench_s"] = round(time.perf_counter() - started, 1)
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


@dataclass
class Budget:
    """The whole run's deadline (time.perf_counter()): every wait is cut to what is left of it, and a
    phase that would start with less than ``least`` seconds left is skipped and named in the results."""

    deadline: float
    least: float = 15.0

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def timeout(self, phase_timeout: float) -> float:
        return max(1.0, min(phase_timeout, self.left()))

    def allows(self, phase: str, results: dict[str, Any]) -> bool:
        if self.left() >= self.least:
            return True
        results.setdefault("skipped", []).append(phase)
        say(f"{phase}: skipped, {max(0.0, self.left()):.0f} s left of the run's budget")
        return False


def _run(stack: Stack, args: argparse.Namespace, budget: Budget, results: dict[str, Any]) -> None:
    count = args.records
    say(f"raw baselines: {min(count, 2000)} single updates, {count} records 500 per UPDATE")
    results["raw_single_updates_per_s"] = round(
        raw.single_updates_per_s(ZONE, KEY, stack.secret, stack.bind_port, min(count, 2000)), 1
    )
    results["raw_batched_records_per_s"] = round(
        raw.batched_records_per_s(ZONE, KEY, stack.secret, stack.bind_port, count), 1
    )

    if budget.allows("changeset", results):
        say(f"changeset_{count}: one v2 change set of {count} new records")
        results[f"changeset_{count}_s"] = _changeset(stack, count, budget.timeout(args.phase_timeout))

    if args.no_peer:
        results["peer_note"] = "left out (--no-peer)"
    elif budget.allows("peer", results):
        _peer(stack, count, budget.timeout(args.phase_timeout), results)

    if budget.allows("e2e_single", results):
        _e2e_single(stack, args, budget, results)

    for offered, suffix in ((50, ""), (200, "_at_200")):
        _settle(stack, budget.timeout(args.phase_timeout))
        if not budget.allows(f"e2e latency at {offered}/s", results):
            continue
        total = offered * args.seconds * (2 if offered == 50 else 1)  # 1,000 and 2,000 by default
        say(f"e2e latency at {offered}/s offered: {total} requests")
        sent = load.Load(stack.api_url, stack.admin_key).run(
            total, _create(f"lat{offered}"), rate=offered, until=budget.deadline
        )
        due = {item.request_id: item.scheduled_at for item in sent if item.request_id}
        _wait_for(stack, list(due), budget.timeout(args.phase_timeout))
        if offered == 50:  # from the request's arrival at the API, as this key always was
            latencies = [end - start for start, end in _timings(stack, list(due))]
        else:  # from its scheduled send time, so time spent waiting to be accepted counts
            latencies = [end - due[request_id] for request_id, end in _ended(stack, list(due))]
        results[f"e2e_p50_s{suffix}"] = round(load.percentile(latencies, 0.5), 3)
        results[f"e2e_p99_s{suffix}"] = round(load.percentile(latencies, 0.99), 3)
        if len(latencies) < total:
            results[f"e2e_note{suffix}"] = f"{len(latencies)} of {total} succeeded in time"

    rate = 300
    _settle(stack, budget.timeout(args.phase_timeout))
    if budget.allows(f"ingest at {rate}/s", results):
        say(f"ingest at {rate}/s offered for {args.seconds} s")
        sent = load.Load(stack.api_url, stack.admin_key).run(
            rate * args.seconds, _create("ing"), rate=rate, until=budget.deadline
        )
        accepted = [item for item in sent if item.status == 202]
        results["ingest_p50_ms"] = round(load.percentile([item.latency_s * 1000 for item in accepted], 0.5), 1)
        results["ingest_p99_ms"] = round(load.percentile([item.latency_s * 1000 for item in accepted], 0.99), 1)
        results["ingest_errors_at_300"] = len(sent) - len(accepted)

    if budget.allows("ingest at saturation", results):
        say(f"ingest at saturation for {args.seconds} s (wrk, 32 connections)")
        saturation = load.saturate(
            stack.api_url, stack.admin_key, f"sat{uuid.uuid4().hex[:6]}", seconds=args.seconds, connections=32
        )
        results["ingest_rps"] = round(saturation.requests_per_s, 1)
        results["ingest_saturation_p99_ms"] = round(saturation.p99_ms, 1)
        results["ingest_saturation_errors"] = saturation.errors

    _settle(stack, budget.timeout(args.phase_timeout))  # the ingest's requests are applied before the events start
    if budget.allows("kafka", results):
        say(f"kafka: {count} events")
        results["kafka_events_per_s"] = _kafka(stack, count, budget.timeout(args.phase_timeout))

    if budget.allows("floor", results):  # last: it needs the machine to itself, the stack idle
        try:
            for layer, value in floor.measure(args.api_processes, args.seconds).items():
                results[f"floor_{layer}_per_s"] = value
        except (floor.FloorError, OSError, subprocess.SubprocessError) as exc:
            results["floor_note"] = str(exc)


def _e2e_single(stack: Stack, args: argparse.Namespace, budget: Budget, results: dict[str, Any]) -> None:
    count = args.records
    say(f"e2e_single: {count} single-record requests, as fast as they are accepted")
    spent: dict[str, float] = {}
    roots = {name: process.pid for name, process in stack.processes.items() if name != "consumer"}
    with cpu.measured(roots, _bind_pid(), spent):
        ids, first = _submit(stack, "e2e", count, rate=None, until=budget.deadline)
        done = _wait_for(stack, ids, budget.timeout(args.phase_timeout))
    timings = _timings(stack, ids)
    if done and timings:
        results["e2e_records_per_s"] = round(len(ids) / (max(end for _, end in timings) - first), 1)
        per_request = {name: round(seconds * 1000 / len(ids), 2) for name, seconds in spent.items()}
        results["cpu_ms_per_request"] = per_request
        results["cpu_ms_per_request_total"] = round(sum(per_request.values()), 2)
        results["e2e_served"] = _served(stack, "e2e-") == len(ids)
    else:
        results["e2e_records_per_s"] = round(len(timings) / args.phase_timeout, 1)
        results["e2e_note"] = f"{len(timings)} of {len(ids)} succeeded within {args.phase_timeout:.0f} s"
    results["e2e_vs_raw_single"] = round(results["e2e_records_per_s"] / results["raw_single_updates_per_s"], 3)


def _peer(stack: Stack, count: int, timeout: float, results: dict[str, Any]) -> None:
    """octoDNS applying the same new A records to zones of its own on the same BIND (bench/peer.py)."""
    _settle(stack, timeout)  # the peer runs on an idle pipeline, as ours did
    say(f"peer: octoDNS + octodns-bind, {count} new A records, {peer.RUNS} whole octodns-sync processes")
    started = time.monotonic()
    try:
        sync = peer.install(timeout=min(240.0, timeout))
    except peer.Unavailable as error:
        results["peer_note"] = f"octoDNS could not be installed: {error}"
        say(results["peer_note"])
        return
    say(f"octoDNS ready in {time.monotonic() - started:.1f} s ({', '.join(peer.PINS)})")
    workdir = RUN_DIR / "peer"
    workdir.mkdir(parents=True, exist_ok=True)
    left = max(10.0, timeout - (time.monotonic() - started))
    outcome = peer.run(sync, count, stack.bind_port, stack.secret_of(peer.KEY), workdir, left)
    results[f"peer_octodns_{count}_runs_s"] = outcome.seconds
    if outcome.note:
        results["peer_note"] = outcome.note
        say(f"octoDNS: {outcome.note}")
    if len(outcome.seconds) == peer.RUNS and outcome.median_s is not None:
        results[f"peer_octodns_{count}_s"] = outcome.median_s
        ours = results.get(f"changeset_{count}_s")
        if ours:
            results["changeset_vs_octodns"] = round(outcome.median_s / ours, 3)


def _create(prefix: str) -> load.Body:
    run = uuid.uuid4().hex[:6]

    def body(index: int) -> tuple[str, str, dict[str, object]]:
        name = f"{prefix}-{run}-{index}.{ZONE}"
        return "POST", "/api/v1/records", {"name": name, "type": "A", "values": [f"192.0.2.{index % 250 + 1}"]}

    return body


def _submit(
    stack: Stack, prefix: str, count: int, rate: float | None, until: float | None = None
) -> tuple[list[str], float]:
    first = time.time()
    sent = load.Load(stack.api_url, stack.admin_key).run(count, _create(prefix), rate=rate, until=until)
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


def _ended(stack: Stack, ids: list[str]) -> list[tuple[str, float]]:
    """(request id, succeeded as Unix time), for each request that succeeded."""
    with stack.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT request_id::text, extract(epoch FROM max(at)) FROM request_event"
            " WHERE request_id = ANY(%s::uuid[]) AND step = 'succeeded' GROUP BY request_id",
            (ids,),
        )
        return [(str(request_id), float(ended)) for request_id, ended in cursor.fetchall()]


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


def _rows(count: int) -> list[tuple[str, str, str, str | None]]:
    """(key, label, unit, target): the targets are issue 14's."""
    many = f"{count:,}"
    return [
        ("raw_single_updates_per_s", "raw: sequential single-record TSIG updates (dnspython)", "/s", None),
        ("raw_batched_records_per_s", "raw: records, 500 per UPDATE over one TCP connection", "/s", None),
        ("cpu_ms_per_request_total", "CPU ms per e2e_single request, all processes", " ms", "≤ 4 ms"),
        ("ingest_rps", "ingest: v1 POSTs accepted at saturation", "/s", "≥ 600/s"),
        ("ingest_p50_ms", "ingest: p50 at 300/s offered", " ms", None),
        ("ingest_p99_ms", "ingest: p99 at 300/s offered", " ms", "< 50 ms"),
        ("e2e_records_per_s", "e2e_single: records/s, first submit to last succeeded", "/s", None),
        ("e2e_vs_raw_single", "e2e_single ÷ raw sequential", "", "≥ 0.5"),
        ("e2e_p50_s", "e2e: p50 submit→succeeded at 50/s offered", " s", None),
        ("e2e_p99_s", "e2e: p99 submit→succeeded at 50/s offered", " s", None),
        ("e2e_p50_s_at_200", "e2e: p50 submit→succeeded at 200/s offered", " s", "< 0.1 s"),
        ("e2e_p99_s_at_200", "e2e: p99 submit→succeeded at 200/s offered", " s", None),
        (f"changeset_{count}_s", f"changeset: {many} new records until succeeded and served", " s", "≤ 1.0 s"),
        (
            f"peer_octodns_{count}_s",
            f"peer: octoDNS + octodns-bind, the same {many} (octodns-sync, median of 3)",
            " s",
            None,
        ),
        ("changeset_vs_octodns", "peer ÷ changeset (times faster than octoDNS)", "", "≥ 2"),
        ("kafka_events_per_s", "kafka: events on the topic to succeeded", "/s", "≥ 500/s"),
        ("floor_http_per_s", "floor: FastAPI + uvicorn answering a pydantic POST, nothing else", "/s", None),
        ("floor_db_per_s", "floor: + the design's two commits per POST (bare psycopg2, no rules)", "/s", None),
        ("floor_queue_per_s", "floor: + the publish with confirm (no worker runs)", "/s", None),
        ("floor_grouped_per_s", "floor: the same, the writes in flight grouped (one commit)", "/s", None),
    ]


def _table(results: dict[str, Any]) -> str:
    count = int(results.get("records") or 5000)
    lines = ["| benchmark | measured | target |", "|---|---:|---|"]
    for key, label, unit, target in _rows(count):
        value = results.get(key)
        lines.append(f"| {label} | {'—' if value is None else f'{value}{unit}'} | {target or ''} |")
    notes = []
    spent = results.get("cpu_ms_per_request") or {}
    if spent:
        notes.append(
            "CPU milliseconds per e2e_single request, by process: " + ", ".join(f"{k} {v}" for k, v in spent.items())
        )
    runs = results.get(f"peer_octodns_{count}_runs_s")
    if runs:
        notes.append(f"octoDNS runs (whole process, s): {', '.join(str(run) for run in runs)}")
    if results.get("peer_note"):
        notes.append(f"**octoDNS peer: {results['peer_note']}** — its rows are not measured.")
    for key in ("e2e_note", "e2e_note_at_200", "floor_note"):
        if results.get(key):
            notes.append(f"{key}: {results[key]}")
    if results.get("skipped"):
        notes.append(f"**Skipped, the run's time budget being spent:** {', '.join(results['skipped'])}.")
    for note in notes:
        lines += ["", note]
    lines.append("")
    processes = results.get("api_processes")
    took = results.get("bench_s")
    lines.append(
        f"Measured {results.get('measured_at')} on {results.get('machine')}"
        + (f", the API as {processes} processes" if processes else "")
        + (f", in {took} s" if took else "")
        + "."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
