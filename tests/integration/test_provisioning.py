"""A record asked for over HTTP ends up served by BIND, and the tracker tells how."""

from __future__ import annotations

import json
import uuid

import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import httpx
import pytest

from tests.integration.dns_helpers import served, texts
from tests.support import (
    DOWN_ZONE,
    KEY,
    STALE_ZONE,
    ZONE,
    Bind,
    Process,
    dead_lettered,
    unique_label,
    wait_for_terminal,
    wait_until,
)

pytestmark = pytest.mark.integration


def post_record(client: httpx.Client, body: dict[str, object], request_id: str | None = None) -> httpx.Response:
    headers = {"X-Request-ID": request_id} if request_id else {}
    return client.post("/api/v1/records", json=body, headers=headers)


def test_an_a_record_is_served_by_bind_and_the_tracker_shows_each_step(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('www')}.{ZONE}"
    request_id = str(uuid.uuid4())

    answer = post_record(stack, {"name": name, "type": "A", "values": ["192.0.2.10"], "ttl": 300}, request_id)

    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["request_id"] == request_id
    assert answer.headers["x-request-id"] == request_id
    assert accepted["status_url"].endswith(f"/api/v1/requests/{request_id}")
    assert answer.headers["location"] == accepted["status_url"]

    final = wait_for_terminal(stack, request_id)
    assert final["status"] == "succeeded", final
    rrset = served(bind, name, "A")
    assert rrset is not None
    assert [rdata.to_text() for rdata in rrset] == ["192.0.2.10"]
    assert rrset.ttl == 300

    steps = [event["step"] for event in final["events"]]
    assert steps == ["received", "validated", "queued", "started", "dns_sent", "dns_verified", "succeeded"]
    assert [event["component"] for event in final["events"]] == ["api"] * 3 + ["worker"] * 4
    times = [event["at"] for event in final["events"]]
    assert times == sorted(times)

    records = stack.get("/api/v1/records", params={"zone": ZONE, "name": name}).json()["items"]
    mine = [record for record in records if record["name"] == name + "."]
    assert mine == [
        {
            "zone": ZONE + ".",
            "name": name + ".",
            "type": "A",
            "ttl": 300,
            "values": ["192.0.2.10"],
            "ptr": False,
            "version": 1,
            "status": "active",
            "last_request_id": request_id,
            "updated_at": mine[0]["updated_at"],
        }
    ]


def test_api_and_worker_log_lines_carry_the_request_id(stack: httpx.Client, api: Process, worker: Process) -> None:
    request_id = str(uuid.uuid4())
    name = f"{unique_label('logs')}.{ZONE}"
    post_record(stack, {"name": name, "type": "A", "values": ["192.0.2.11"]}, request_id)
    assert wait_for_terminal(stack, request_id)["status"] == "succeeded"

    def lines_of(process: Process) -> list[dict[str, object]]:
        return [line for line in process.log_lines() if line.get("request_id") == request_id]

    api_lines = lines_of(api)
    worker_lines = wait_until(lambda: lines_of(worker), timeout=5, what="worker log lines")
    assert {line["component"] for line in api_lines} == {"api"}
    assert {line["component"] for line in worker_lines} == {"worker"}
    for line in api_lines + worker_lines:
        assert {"timestamp", "level", "component", "message", "request_id"} <= line.keys()
    assert {"received", "validated", "queued"} <= {line.get("step") for line in api_lines}
    assert {"started", "dns_sent", "dns_verified", "succeeded"} <= {line.get("step") for line in worker_lines}


def test_txt_with_spaces_quotes_and_backslashes_round_trips_exactly(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('txt')}.{ZONE}"
    text = 'v=spf1 include:_spf.example.test ~all "quoted" and \\ backslash'
    long_text = "x" * 300 + " end"

    answer = post_record(stack, {"name": name, "type": "TXT", "values": [text, long_text]})

    assert answer.status_code == 202, answer.text
    assert wait_for_terminal(stack, answer.json()["request_id"])["status"] == "succeeded"
    rrset = served(bind, name, "TXT")
    assert rrset is not None
    texts = sorted(b"".join(rdata.strings).decode() for rdata in rrset)
    assert texts == sorted([text, long_text])
    long_rdata = next(rdata for rdata in rrset if len(rdata.strings) > 1)
    assert [len(part) for part in long_rdata.strings] == [255, 49]


def test_aaaa_and_cname_are_served_normalised(stack: httpx.Client, bind: Bind) -> None:
    host = f"{unique_label('v6')}.{ZONE}"
    alias = f"{unique_label('alias')}.{ZONE}"
    first = post_record(stack, {"name": host.upper(), "type": "AAAA", "values": ["2001:DB8:0:0:0:0:0:1"]})
    second = post_record(stack, {"name": alias, "type": "CNAME", "values": [host.upper()]})
    assert wait_for_terminal(stack, first.json()["request_id"])["status"] == "succeeded"
    assert wait_for_terminal(stack, second.json()["request_id"])["status"] == "succeeded"

    aaaa = served(bind, host, "AAAA")
    cname = served(bind, alias, "CNAME")
    assert aaaa is not None
    assert [rdata.to_text() for rdata in aaaa] == ["2001:db8::1"]
    assert cname is not None
    assert [rdata.to_text() for rdata in cname] == [f"{host}."]


def test_an_unreachable_server_is_retried_then_failed_and_dead_lettered(stack: httpx.Client, queue_name: str) -> None:
    name = f"{unique_label('down')}.{DOWN_ZONE}"
    answer = post_record(stack, {"name": name, "type": "A", "values": ["192.0.2.20"]})
    request_id = answer.json()["request_id"]

    final = wait_for_terminal(stack, request_id, timeout=60)

    assert final["status"] == "failed"
    assert final["error_code"] == "retries_exhausted"
    assert "cannot reach" in final["error_detail"]
    assert final["attempts"] == 3  # the first try and max_retries=2 retries
    steps = [event["step"] for event in final["events"]]
    assert steps.count("started") == 3
    assert steps.count("retry_scheduled") == 2
    assert steps[-2:] == ["dead_lettered", "failed"]
    assert dead_lettered_request_ids(queue_name, expect=request_id) >= {request_id}


def dead_lettered_request_ids(queue_name: str, *, expect: str) -> set[str]:
    """The request ids of the messages in the dead-letter queue (read, then put back)."""

    def read() -> set[str]:
        found = dead_lettered(queue_name)
        return found if expect in found else set()

    ids: set[str] = wait_until(read, timeout=15, what="the message in the dead-letter queue", interval=0.5)
    return ids


def test_a_wrong_tsig_secret_fails_at_once_with_a_readable_reason(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('stale')}.{STALE_ZONE}"
    answer = post_record(stack, {"name": name, "type": "A", "values": ["192.0.2.30"]})

    final = wait_for_terminal(stack, answer.json()["request_id"])

    assert final["status"] == "failed"
    assert final["error_code"] == "tsig_bad_signature"
    assert "secret differs" in final["error_detail"]
    assert final["attempts"] == 1
    assert "retry_scheduled" not in [event["step"] for event in final["events"]]
    assert served(bind, name, "A") is None
    records = stack.get("/api/v1/records", params={"zone": STALE_ZONE}).json()["items"]
    assert [record["status"] for record in records if record["name"] == name + "."] == ["error"]


def test_an_update_the_server_silently_ignores_is_failed_not_reported_as_success(
    stack: httpx.Client, bind: Bind
) -> None:
    """Someone put a CNAME at the name behind Hostmaster's back: BIND answers NOERROR to our A
    and ignores it. Only the verification query tells, and the request says so."""
    name = f"{unique_label('outside')}.{ZONE}"
    outside = dns.update.UpdateMessage(
        ZONE, keyring=dns.tsigkeyring.from_text({KEY: bind.secret(KEY)}), keyalgorithm="hmac-sha256"
    )
    outside.add(name + ".", 300, "CNAME", f"elsewhere.{ZONE}.")
    assert dns.query.tcp(outside, bind.host, port=bind.port, timeout=5).rcode() == dns.rcode.NOERROR

    answer = post_record(stack, {"name": name, "type": "A", "values": ["192.0.2.40"]})
    final = wait_for_terminal(stack, answer.json()["request_id"])

    assert final["status"] == "failed"
    assert final["error_code"] == "not_applied"
    assert "ignored the update" in final["error_detail"]
    assert served(bind, name, "A") is None


def test_an_idempotency_key_gives_the_same_request_and_a_different_body_is_a_409(
    stack: httpx.Client, bind: Bind
) -> None:
    name = f"{unique_label('idem')}.{ZONE}"
    key = f"deploy-{uuid.uuid4()}"
    body = {"name": name, "type": "A", "values": ["192.0.2.50"]}

    first = stack.post("/api/v1/records", json=body, headers={"Idempotency-Key": key})
    again = stack.post("/api/v1/records", json=body, headers={"Idempotency-Key": key})
    other = stack.post("/api/v1/records", json={**body, "values": ["192.0.2.51"]}, headers={"Idempotency-Key": key})

    assert first.status_code == again.status_code == 202
    assert again.json()["request_id"] == first.json()["request_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert first.headers["location"] == again.headers["location"] == first.json()["status_url"]
    assert first.headers["content-type"] == "application/json"
    assert "idempotent-replayed" not in first.headers
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    final = wait_for_terminal(stack, first.json()["request_id"])
    assert final["status"] == "succeeded"
    assert texts(served(bind, name, "A")) == ["192.0.2.50"]
    assert stack.get(f"/api/v1/records/{name}/A").json()["version"] == 1  # one change, not two
    assert stack.post("/api/v1/records", json=body, headers={"Idempotency-Key": "has space"}).status_code == 422


def test_the_origin_of_a_kafka_event_is_recorded(stack: httpx.Client) -> None:
    answer = stack.post(
        "/api/v1/records",
        json={"name": f"{unique_label('kafka')}.{ZONE}", "type": "TXT", "values": ["from kafka"]},
        headers={"X-Kafka-Topic": "dns.requests", "X-Kafka-Partition": "2", "X-Kafka-Offset": "41"},
    )

    tracked = stack.get(f"/api/v1/requests/{answer.json()['request_id']}").json()
    assert tracked["source"] == "kafka"
    assert tracked["events"][0]["detail"] == {
        "operation": "record.create",
        "source": "kafka",
        "topic": "dns.requests",
        "partition": 2,
        "offset": 41,
    }


@pytest.mark.parametrize("partition", [b"\xb2", b"\xb9", b"-1"])  # "²" and "¹" (latin-1) pass str.isdigit()
def test_a_kafka_origin_that_is_not_a_number_is_a_422_and_changes_nothing(
    stack: httpx.Client, partition: bytes
) -> None:
    name = f"{unique_label('origin')}.{ZONE}"
    answer = stack.post(
        "/api/v1/records",
        json={"name": name, "type": "TXT", "values": ["from kafka"]},
        headers=[(b"X-Kafka-Topic", b"dns.requests"), (b"X-Kafka-Partition", partition), (b"X-Kafka-Offset", b"41")],
    )

    assert answer.status_code == 422, answer.text
    assert answer.json()["violations"][0]["field"] == "X-Kafka-Topic"
    assert stack.get(f"/api/v1/records/{name}/TXT").status_code == 404


def test_a_refused_body_is_kept_as_its_size_hash_and_start_not_whole(stack: httpx.Client) -> None:
    values = [f"v{index}-" + "x" * 700 for index in range(100)]  # ~70 KB: over the RRset's 16,000 octets
    body = {"name": f"{unique_label('big')}.{ZONE}", "type": "TXT", "values": values}
    answer = stack.post("/api/v1/records", json=body)
    assert answer.status_code == 422, answer.text

    tracked = stack.get(f"/api/v1/requests/{answer.json()['request_id']}").json()

    assert tracked["status"] == "rejected"
    kept = tracked["payload"]
    assert kept["truncated"] is True
    assert kept["size"] > 70_000
    assert len(kept["sha256"]) == 64
    assert kept["start"].startswith('{"name":')
    assert len(json.dumps(kept)) < 4_096
    small = stack.post("/api/v1/records", json={**body, "values": ["192.0.2.300"], "type": "A"})
    assert stack.get(f"/api/v1/requests/{small.json()['request_id']}").json()["payload"]["values"] == ["192.0.2.300"]
