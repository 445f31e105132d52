"""Fault injection: with a few hundred requests in flight (REST and Kafka), a worker process is
killed, RabbitMQ restarted, BIND stopped for 10 s, PostgreSQL restarted, the API killed and started
again. After each, every request has ended, none is lost, and the zone's AXFR equals the desired
state and what the users asked for. `make test-faults`; the table is printed at the end.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dns.name
import dns.query
import dns.rdatatype
import dns.tsigkeyring
import dns.zone
import httpx
import pytest

from tests.faults import faults
from tests.faults.load import Intent, RestClients, Results, kafka_intents, produce, rest_intents
from tests.support import (
    KEY,
    ZONE,
    Bind,
    Kafka,
    Process,
    free_port,
    make_client,
    start_api,
    start_process,
    wait_until,
)

pytestmark = pytest.mark.integration

REST_INTENTS = 200
KAFKA_EVENTS = 100
DRAIN_S = 300.0
TERMINAL = {"succeeded", "failed", "rejected"}


@dataclass
class Row:
    scenario: str
    sent: int
    succeeded: int
    failed: Counter[str]
    lost: int
    drain_s: float
    disturbed: int = 0  # requests whose timeline shows the fault: another attempt, a retry, a requeue
    results_twice: int = 0  # Kafka events whose result was published more than once (seen by the end)


ROWS: list[Row] = []


class FaultStack:
    """API, supervised workers, recovery job and Kafka consumer of their own, to be hurt."""

    def __init__(self, env: dict[str, str], bind: Bind, kafka: Kafka) -> None:
        self.bind, self.kafka = bind, kafka
        admin = make_client(env, "fault-admin", "*", scopes=("admin",))
        self.env = {
            **env,
            "HOSTMASTER_MAX_RETRIES": "8",  # backoffs 0.5, 1, 2, 4, 4 … s: more than any outage here
            "HOSTMASTER_MIN_BACKOFF_MS": "500",
            "HOSTMASTER_MAX_BACKOFF_MS": "4000",
            "HOSTMASTER_RECOVERY_INTERVAL_S": "2",
            "HOSTMASTER_RECOVERY_REQUEUE_AFTER_S": "8",
            "HOSTMASTER_ABANDON_AFTER_S": "8",
            "HOSTMASTER_RECONCILE_INTERVAL_S": "0",
            "HOSTMASTER_CONSUMER_RETRY_MAX_S": "2",
            "HOSTMASTER_CONSUMER_STATS_INTERVAL_S": "5",
            "HOSTMASTER_KAFKA_GROUP_ID": f"faults-{uuid.uuid4().hex[:6]}",
        }
        self.processes: list[Process] = []
        self.users_key = make_client(self.env, "fault-users", ZONE)
        self.port = free_port()
        self.env["HOSTMASTER_API_URL"] = f"http://127.0.0.1:{self.port}"
        self.env["HOSTMASTER_CONSUMER_API_KEY"] = make_client(self.env, "fault-kafka", ZONE, scopes=("write",))
        self.api = start_api("fault-api", self.env, self.port)
        self.admin = httpx.Client(base_url=self.api.url, timeout=10, headers={"Authorization": f"Bearer {admin}"})
        try:
            self._start(bind)
        except BaseException:
            self.stop()
            raise

    def _start(self, bind: Bind) -> None:
        answer = self.admin.post(
            "/api/v1/zones",
            json={"name": ZONE, "primary_host": bind.host, "primary_port": bind.port, "tsig_key_name": KEY},
        )
        assert answer.status_code == 201, answer.text
        self.worker = start_process(
            "fault-worker", ["-m", "service.cli", "run", "worker", "--processes", "2", "--threads", "4"], self.env
        )
        self.processes.append(self.worker)
        self.processes.append(start_process("fault-recovery", ["-m", "service.cli", "run", "recovery"], self.env))
        self.processes.append(start_process("fault-consumer", ["-m", "consumer"], self.env))
        wait_until(lambda: "ready for action" in self.worker.log_path.read_text(), timeout=60, what="the workers")
        self.baseline = axfr(bind)  # the zone's own records, there before Hostmaster
        self.promised: dict[tuple[str, str], list[str] | None] = {}

    def restart_api(self) -> None:
        self.api = faults.restart_api(self.api, self.env, self.port)

    def stop(self) -> None:
        self.admin.close()
        for process in [*reversed(self.processes), self.api]:
            process.stop()


@pytest.fixture(scope="module")
def stack(stack_env: dict[str, str], bind: Bind, kafka: Kafka) -> Iterator[FaultStack]:
    running = FaultStack(stack_env, bind, kafka)
    yield running
    running.stop()


def axfr(bind: Bind) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """The zone as its primary serves it, by a TSIG-signed AXFR: (owner, type) → (ttl, values)."""
    keyring = dns.tsigkeyring.from_text({KEY: bind.secret(KEY)})
    zone = dns.zone.from_xfr(
        dns.query.xfr(
            bind.host,
            ZONE,
            port=bind.port,
            keyring=keyring,
            keyalgorithm="hmac-sha256",
            lifetime=30,
            relativize=False,
        ),
        relativize=False,
    )
    served = {}
    for name, rdataset in zone.iterate_rdatasets():
        served[(name.to_text(), dns.rdatatype.to_text(rdataset.rdtype))] = (
            rdataset.ttl,
            sorted(rdata.to_text() for rdata in rdataset),
        )
    return served


def desired(admin: httpx.Client) -> dict[tuple[str, str], list[str]]:
    """The desired state as the API shows it: every RRset of the zone, page by page."""
    found: dict[tuple[str, str], list[str]] = {}
    cursor = None
    while True:
        page = admin.get(
            "/api/v1/records", params={"zone": ZONE, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        for record in page.json()["items"]:
            assert record["status"] == "active", record
            found[(record["name"], record["type"])] = sorted(record["values"])
        cursor = page.json()["next_cursor"]
        if not cursor:
            return found


def outcome(stack: FaultStack, intent: Intent, results: Results) -> str | None:
    """'succeeded', 'failed: <reason>', or None while it has not ended."""
    if intent.refused is not None:
        return f"failed: refused {intent.refused.split(':')[0]}"
    if intent.source == "kafka":
        result = results.by_event.get(intent.event_id)
        if result is None or result["status"] not in TERMINAL:
            return None
        intent.request_ids = [result["request_id"]]
        return "succeeded" if result["status"] == "succeeded" else f"failed: {(result['error'] or {}).get('code')}"
    ends = []
    for request_id in intent.request_ids:
        body = stack.admin.get(f"/api/v1/requests/{request_id}").json()
        if body.get("status") not in TERMINAL:
            return None
        ends.append("succeeded" if body["status"] == "succeeded" else f"failed: {body['error_code']}")
    return next((end for end in ends if end != "succeeded"), "succeeded")


def disturbed(stack: FaultStack, intents: list[Intent]) -> int:
    """How many requests the fault reached: sent again by their client, or another attempt in their timeline."""
    count = 0
    for intent in intents:
        reached = intent.sent_again > 0
        for request_id in intent.request_ids:
            events = stack.admin.get(f"/api/v1/requests/{request_id}").json()["events"]
            steps = Counter(event["step"] for event in events)
            reached |= steps["started"] > 1 or bool(
                steps["retry_scheduled"] + steps["requeued"] + steps["enqueue_failed"]
            )
        count += reached
    return count


def run(stack: FaultStack, scenario: str, inject: Callable[[], None]) -> Row:
    rest = rest_intents(scenario, ZONE, REST_INTENTS)
    events = kafka_intents(scenario, ZONE, KAFKA_EVENTS)
    results = Results(stack.kafka)
    users = RestClients(stack.api.url, stack.users_key)
    failures: list[BaseException] = []

    def send() -> None:
        try:
            users.run(rest)
        except BaseException as exc:
            failures.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    produce(stack.kafka, events)
    time.sleep(2.0)  # requests in every stage now: accepted, queued, being applied
    inject()
    sender.join(timeout=400)
    assert not failures, f"the REST load failed: {failures}"
    assert not sender.is_alive(), "the REST load did not finish"
    fault_over = time.monotonic()
    intents = rest + events
    ended: dict[int, str] = {}
    deadline = fault_over + DRAIN_S
    while time.monotonic() < deadline:
        for index, intent in enumerate(intents):
            if index not in ended:
                try:
                    end = outcome(stack, intent, results)
                except httpx.HTTPError:
                    end = None
                if end is not None:
                    ended[index] = end
        if len(ended) == len(intents):
            break
        time.sleep(1.0)
    drain_s = time.monotonic() - fault_over
    results.close()
    ends = Counter(ended.values())
    row = Row(
        scenario,
        sent=len(intents),
        succeeded=ends.pop("succeeded", 0),
        failed=Counter({reason.removeprefix("failed: "): n for reason, n in ends.items()}),
        lost=len(intents) - len(ended),
        drain_s=drain_s,
        disturbed=disturbed(stack, intents),
        results_twice=sum(1 for intent in events if results.seen[intent.event_id] > 1),
    )
    ROWS.append(row)
    print(f"\n{scenario}: answers the REST users met: {dict(users.answers)}")
    for intent in intents:
        stack.promised[(intent.name + ".", intent.rtype)] = intent.expected
    return row


def check(stack: FaultStack, row: Row) -> None:
    assert row.lost == 0, f"{row.lost} requests did not end: {row}"
    assert row.succeeded == row.sent, f"not every request succeeded: {row}"
    served = {key: values for key, (_, values) in axfr(stack.bind).items() if key not in stack.baseline}
    promised = {key: sorted(values) for key, values in stack.promised.items() if values is not None}
    assert served == promised, (
        f"served but not asked for: {sorted(set(served) - set(promised))[:5]}; "
        f"asked for but not served or different: {[k for k in promised if served.get(k) != promised[k]][:5]}"
    )
    assert desired(stack.admin) == promised


SCENARIOS: dict[str, Callable[[FaultStack], None]] = {
    "kill -9 a worker": lambda stack: faults.kill_a_worker_process(stack.worker),
    "restart RabbitMQ": lambda stack: faults.restart_rabbitmq(),
    "stop BIND 10 s": lambda stack: faults.stop_bind_for_a_while(stack.bind),
    "restart PostgreSQL": lambda stack: faults.restart_postgresql(),
    "restart the API": FaultStack.restart_api,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_request_ends_nothing_is_lost_and_dns_matches(stack: FaultStack, scenario: str) -> None:
    label = scenario.split()[0].lower() + "-" + uuid.uuid4().hex[:4]
    row = run(stack, label, lambda: SCENARIOS[scenario](stack))
    row.scenario = scenario
    check(stack, row)


COALESCED = 250  # requests of one zone in the backlog a pass takes (at least 200 of them at once)
_APPLIED_WITH = re.compile(r"applied with (\d+) others of its zone")


def test_a_worker_killed_in_the_middle_of_a_coalesced_batch_loses_nothing(stack: FaultStack) -> None:
    """kill -9 the worker process whose pass of at least 200 requests of one zone is between
    its claim and its commit: the pass left no trace, every request is applied by its own
    message (redelivered, or still queued), none is lost or stuck, and DNS equals the desired state.

    To be sure the kill lands inside the pass, the backlog is built while the workers are
    stopped (SIGSTOP), and BIND is stopped while they resume: the pass claims, then waits for
    the primary's answer to its UPDATE, and is killed there."""
    label = f"batch-{uuid.uuid4().hex[:4]}"
    names = [f"{label}-c{index}.{ZONE}" for index in range(COALESCED)]
    workers = faults.worker_processes(stack.worker)
    log_start = len(stack.worker.log_path.read_text())
    faults.signal_all(workers, signal.SIGSTOP)
    try:
        headers = {"Authorization": f"Bearer {stack.users_key}"}
        with httpx.Client(base_url=stack.api.url, timeout=30, headers=headers) as http:

            def put(index: int) -> str:
                answer = http.put(f"/api/v1/records/{names[index]}/A", json={"values": [f"192.0.2.{index % 250 + 1}"]})
                assert answer.status_code == 202, answer.text
                return str(answer.json()["request_id"])

            with ThreadPoolExecutor(8) as pool:
                request_ids = list(pool.map(put, range(COALESCED)))
        named = faults.bind_pid(stack.bind)
        os.kill(named, signal.SIGSTOP)
    finally:
        faults.signal_all(workers, signal.SIGCONT)
    began = time.monotonic()
    try:

        def largest_pass() -> int:
            sizes = _APPLIED_WITH.findall(stack.worker.log_path.read_text()[log_start:])
            return max((int(size) + 1 for size in sizes), default=0)

        largest = wait_until(lambda: largest_pass() >= 200 and largest_pass(), timeout=30, what="a pass of 200")
        database_url = stack.env["HOSTMASTER_DATABASE_URL"]
        holder = wait_until(
            lambda: faults.holding_a_transaction(database_url, workers), timeout=10, what="the pass's worker process"
        )
        os.kill(holder, signal.SIGKILL)  # the other worker process goes on
    finally:
        os.kill(named, signal.SIGCONT)
    ends: Counter[str] = Counter()
    deadline = time.monotonic() + DRAIN_S
    pending = set(request_ids)
    while pending and time.monotonic() < deadline:
        for request_id in list(pending):
            body = stack.admin.get(f"/api/v1/requests/{request_id}").json()
            if body.get("status") in TERMINAL:
                ends["succeeded" if body["status"] == "succeeded" else f"failed: {body['error_code']}"] += 1
                pending.discard(request_id)
        time.sleep(1.0)
    drain_s = time.monotonic() - began
    finals = [stack.admin.get(f"/api/v1/requests/{request_id}").json() for request_id in request_ids]
    started = Counter(event["step"] for final in finals for event in final["events"])
    row = Row(
        f"kill -9 a worker mid-batch ({largest} requests in its pass)",
        sent=COALESCED,
        succeeded=ends.pop("succeeded", 0),
        failed=Counter({reason.removeprefix("failed: "): n for reason, n in ends.items()}),
        lost=len(pending),
        drain_s=drain_s,
        disturbed=sum(1 for final in finals if [event["step"] for event in final["events"]].count("started") > 1),
    )
    ROWS.append(row)
    print(f"\n{row.scenario}: steps {dict(started)}")
    for index, name in enumerate(names):
        stack.promised[(name + ".", "A")] = [f"192.0.2.{index % 250 + 1}"]
    check(stack, row)
    for final in finals:  # the killed pass recorded nothing: each request's steps are one attempt's
        steps = [event["step"] for event in final["events"] if event["component"] == "worker"]
        assert steps[-3:] == ["dns_sent", "dns_verified", "succeeded"], final
