"""Load for the fault-injection suite: REST clients and Kafka producers asking for records, each
behaving as a careful client does (an Idempotency-Key per write, sent again on a connection error,
a 5xx or a 409 that says to), and what each of them was promised."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from kafka import KafkaConsumer, KafkaProducer

from tests.support import Kafka

SEND_AGAIN = {"concurrent_change", "idempotency_key_in_flight"}
CLIENT_PATIENCE_S = 120.0


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any] | None


@dataclass
class Intent:
    """What one user wants for one RRset, as one or more writes, and what became of it."""

    name: str
    rtype: str
    calls: list[Call]
    expected: list[str] | None  # the values DNS must serve in the end; None: nothing
    source: str = "rest"
    event_id: str = ""
    request_ids: list[str] = field(default_factory=list)  # the accepted writes' requests, in order
    refused: str | None = None  # an answer that was not 2xx and not worth sending again
    sent_again: int = 0  # writes the client had to send again: no answer, a 5xx, a 409 saying so

    @property
    def last_request(self) -> str | None:
        return self.request_ids[-1] if self.request_ids else None


def rest_intents(scenario: str, zone: str, count: int) -> list[Intent]:
    """Mostly single upserts; every fifth replaced again, every seventh created then deleted."""
    intents = []
    for index in range(count):
        name = f"{scenario}-r{index}.{zone}"
        path = f"/api/v1/records/{name}/A"
        first = [f"192.0.2.{index % 250 + 1}"]
        calls = [Call("PUT", path, {"values": first})]
        expected: list[str] | None = first
        if index % 5 == 1:
            expected = [f"198.51.100.{index % 250 + 1}", f"203.0.113.{index % 250 + 1}"]
            calls.append(Call("PUT", path, {"values": expected}))
        elif index % 7 == 2:
            calls.append(Call("DELETE", path, None))
            expected = None
        intents.append(Intent(name, "A", calls, expected))
    return intents


def kafka_intents(scenario: str, zone: str, count: int) -> list[Intent]:
    intents = []
    for index in range(count):
        name = f"{scenario}-k{index}.{zone}"
        value = f"kafka {scenario} {index}"
        event_id = f"{scenario}-{uuid.uuid4()}"
        body = {"schema_version": 1, "event_id": event_id, "operation": "record.replace"}
        body |= {"name": name, "type": "TXT", "body": {"values": [value]}}
        intents.append(
            Intent(name, "TXT", [Call("EVENT", "", body)], [f'"{value}"'], source="kafka", event_id=event_id)
        )
    return intents


class RestClients:
    """``threads`` users sending their intents at ``rate`` a second, each write until it is accepted."""

    def __init__(self, base_url: str, key: str, *, threads: int = 8, rate: float = 40.0) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {key}"}
        self.threads = threads
        self.rate = rate
        self.answers: Counter[str] = Counter()  # every answer seen, by status and code: what the users met
        self._lock = threading.Lock()

    def run(self, intents: list[Intent]) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=self.base_url, timeout=10) as http, ThreadPoolExecutor(self.threads) as pool:
            sending = []
            for index, intent in enumerate(intents):
                time.sleep(max(0.0, started + index / self.rate - time.monotonic()))
                sending.append(pool.submit(self._send_all, http, intent))
            for future in sending:
                future.result()  # a bug in the load itself fails the test, not a silent intent

    def _send_all(self, http: httpx.Client, intent: Intent) -> None:
        for call in intent.calls:
            request_id = self._send(http, call, intent)
            if request_id is None:
                return
            intent.request_ids.append(request_id)

    def _send(self, http: httpx.Client, call: Call, intent: Intent) -> str | None:
        headers = {**self.headers, "Idempotency-Key": str(uuid.uuid4())}
        deadline = time.monotonic() + CLIENT_PATIENCE_S
        while time.monotonic() < deadline:
            try:
                answer = http.request(call.method, call.path, json=call.body, headers=headers)
            except httpx.HTTPError as exc:
                self._count(type(exc).__name__)
                intent.sent_again += 1
                time.sleep(0.5)
                continue
            body = _json(answer)
            self._count(f"{answer.status_code} {body.get('code', '')}".strip())
            if answer.status_code == 202:
                return str(body["request_id"])
            if answer.status_code >= 500 or answer.status_code == 429 or body.get("code") in SEND_AGAIN:
                intent.sent_again += 1
                time.sleep(min(float(answer.headers.get("retry-after", "1")), 2.0))
                continue
            intent.refused = f"{answer.status_code} {body.get('code')}: {body.get('detail')}"
            return None
        intent.refused = f"not accepted within {CLIENT_PATIENCE_S:.0f} s"
        return None

    def _count(self, what: str) -> None:
        with self._lock:
            self.answers[what] += 1


def produce(kafka: Kafka, intents: list[Intent]) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    try:
        for intent in intents:
            event = intent.calls[0].body
            producer.send(kafka.topic, key=intent.name.encode(), value=json.dumps(event).encode())
        producer.flush(timeout=30)
    finally:
        producer.close()


class Results:
    """Reads the results topic all along, as a Kafka user of Hostmaster does: event id → final result."""

    def __init__(self, kafka: Kafka) -> None:
        self.by_event: dict[str, dict[str, Any]] = {}
        self.seen: Counter[str] = Counter()  # results per event id: more than one is a duplicate
        self._stop = threading.Event()
        self._reader = KafkaConsumer(
            kafka.results,
            bootstrap_servers=kafka.bootstrap,
            group_id=f"fault-results-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            for records in self._reader.poll(timeout_ms=500).values():
                for record in records:
                    value = json.loads(record.value)
                    if value.get("event_id"):
                        self.by_event[value["event_id"]] = value
                        self.seen[value["event_id"]] += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._reader.close()


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
