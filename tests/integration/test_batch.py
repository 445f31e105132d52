"""POST /api/v2/requests:batch: many writes in one call, each answered as its single call would be,
each its own request, all or nothing per write and never per batch."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.dns_helpers import served, texts
from tests.support import BULK_ZONE, ZONE, Bind, make_client, unique_label, wait_for_terminal

pytestmark = pytest.mark.integration

BATCH = "/api/v2/requests:batch"


def create(name: str, *values: str, key: str | None = None) -> dict[str, Any]:
    write: dict[str, Any] = {"operation": "record.create", "body": {"name": name, "type": "A", "values": list(values)}}
    if key is not None:
        write["idempotency_key"] = key
    return write


def post(client: httpx.Client, writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answer = client.post(BATCH, json={"writes": writes})
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    assert len(results) == len(writes)
    return results


def test_each_write_is_its_own_request_and_a_bad_one_fails_alone(stack: httpx.Client, bind: Bind) -> None:
    parent = f"{unique_label('bt')}.{BULK_ZONE}"
    replaced = f"r.{parent}"
    made = stack.post("/api/v1/records", json={"name": replaced, "type": "TXT", "values": ["before"]})
    assert wait_for_terminal(stack, made.json()["request_id"])["status"] == "succeeded"

    results = post(
        stack,
        [
            create(f"a.{parent}", "192.0.2.71"),
            create(f"b.{parent}", "192.0.2.300"),  # not an IPv4 address
            {"operation": "record.replace", "name": replaced, "type": "TXT", "body": {"values": ["after"]}},
            {"operation": "record.delete", "name": f"missing.{parent}", "type": "A"},
            {
                "operation": "changeset",
                "zone": BULK_ZONE,
                "body": {
                    "changes": [
                        {"op": "create", "name": f"c.{parent}", "type": "A", "values": ["192.0.2.72"]},
                    ]
                },
            },
        ],
    )

    assert [result["status"] for result in results] == [202, 422, 202, 404, 202]
    assert results[1]["body"]["violations"][0]["field"] == "values[0]"
    assert results[3]["body"]["code"] == "rrset_not_found"
    finals = [wait_for_terminal(stack, result["body"]["request_id"]) for result in (results[0], results[2], results[4])]
    assert [final["status"] for final in finals] == ["succeeded"] * 3
    assert texts(served(bind, f"a.{parent}", "A")) == ["192.0.2.71"]
    assert texts(served(bind, replaced, "TXT")) == ['"after"']
    assert texts(served(bind, f"c.{parent}", "A")) == ["192.0.2.72"]
    assert served(bind, f"b.{parent}", "A") is None
    # The refused ones are requests too, rejected with their reason, like their single calls.
    for refused in (results[1], results[3]):
        tracked = stack.get(f"/api/v1/requests/{refused['body']['request_id']}").json()
        assert (tracked["status"], tracked["error_code"]) == ("rejected", refused["body"]["code"])
        assert [event["step"] for event in tracked["events"]] == ["received", "rejected"]


def test_writes_of_one_name_take_effect_in_the_order_given(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('order')}.{BULK_ZONE}"
    results = post(
        stack,
        [
            create(name, "192.0.2.81"),
            {"operation": "record.replace", "name": name, "type": "A", "body": {"values": ["192.0.2.82"]}},
        ],
    )

    assert [result["status"] for result in results] == [202, 202]
    later = wait_for_terminal(stack, results[1]["body"]["request_id"])
    assert later["status"] == "succeeded"
    assert later["changes"][0]["before"]["values"] == ["192.0.2.81"]  # it saw the first write
    assert texts(served(bind, name, "A")) == ["192.0.2.82"]


def test_idempotency_keys_answer_with_the_earlier_request_per_write(stack: httpx.Client) -> None:
    parent = f"{unique_label('bkey')}.{BULK_ZONE}"
    keys = [f"evt-{uuid.uuid4()}" for _ in range(3)]
    writes = [create(f"h{index}.{parent}", "192.0.2.91", key=key) for index, key in enumerate(keys)]
    first = post(stack, writes)
    assert [result["replayed"] for result in first] == [False] * 3

    again = post(stack, [*writes[:2], create(f"other.{parent}", "192.0.2.92", key=keys[2])])

    assert [result["body"].get("request_id") for result in again[:2]] == [r["body"]["request_id"] for r in first[:2]]
    assert [result["replayed"] for result in again[:2]] == [True, True]
    assert (again[2]["status"], again[2]["body"]["code"]) == (409, "idempotency_key_reused")  # another body


def test_a_batch_respects_grants_write_by_write(stack: httpx.Client, stack_env: dict[str, str]) -> None:
    key = make_client(stack_env, f"bulk-only-{unique_label('g')}", BULK_ZONE)
    parent = unique_label("grant")
    with httpx.Client(base_url=str(stack.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=10) as own:
        results = post(own, [create(f"{parent}.{BULK_ZONE}", "192.0.2.93"), create(f"{parent}.{ZONE}", "192.0.2.94")])

    assert [result["status"] for result in results] == [202, 403]
    assert results[1]["body"]["code"] == "zone_not_granted"


def test_a_malformed_batch_is_refused_whole_with_the_reason(stack: httpx.Client) -> None:
    cases = [
        ({"writes": []}, "writes"),
        ({"writes": [{"operation": "record.update", "body": {}}]}, "writes[0].operation"),
        ({"writes": [{"operation": "record.replace", "type": "A", "body": {"values": ["1.2.3.4"]}}]}, "writes[0].name"),
        ({"writes": [{"operation": "changeset", "body": {"changes": []}}]}, "writes[0].zone"),
        ({"writes": [create("x.example.test", "192.0.2.1", key="has space")]}, "writes[0].idempotency_key"),
    ]
    for body, field in cases:
        answer = stack.post(BATCH, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in [violation["field"] for violation in answer.json()["violations"]], answer.text


def test_a_write_reads_what_the_writes_before_it_in_the_batch_changed(stack: httpx.Client, bind: Bind) -> None:
    """Two replaces of one RRset, and a rule (no CNAME where an MX points) that an earlier write
    of the batch makes true: each write is planned on what the ones before it wrote."""
    parent = f"{unique_label('seq')}.{BULK_ZONE}"
    www, mail = f"www.{parent}", f"mail.{parent}"
    made = post(stack, [create(www, "192.0.2.101"), create(mail, "192.0.2.102")])
    for result in made:
        assert wait_for_terminal(stack, result["body"]["request_id"])["status"] == "succeeded"

    results = post(
        stack,
        [
            {"operation": "record.replace", "name": www, "type": "A", "body": {"values": ["192.0.2.103"]}},
            {"operation": "record.replace", "name": www, "type": "A", "body": {"values": ["192.0.2.104"]}},
            {"operation": "record.create", "body": {"name": parent, "type": "MX", "values": [f"10 {www}"]}},
            {"operation": "record.delete", "name": www, "type": "A"},  # the MX's target would lose its address
        ],
    )

    assert [result["status"] for result in results[:3]] == [202, 202, 202], results
    assert results[3]["status"] == 422, results[3]
    second = wait_for_terminal(stack, results[1]["body"]["request_id"])
    assert second["status"] == "succeeded"
    assert second["changes"][0]["before"]["values"] == ["192.0.2.103"]  # what the first wrote
    assert texts(served(bind, www, "A")) == ["192.0.2.104"]


def test_a_request_id_or_key_repeated_within_a_batch_is_answered_as_a_second_call_would_be(
    stack: httpx.Client,
) -> None:
    parent = f"{unique_label('dup')}.{BULK_ZONE}"
    request_id, key = str(uuid.uuid4()), f"evt-{uuid.uuid4()}"
    first = create(f"a.{parent}", "192.0.2.111")
    results = post(
        stack,
        [
            {**first, "request_id": request_id},
            {**create(f"b.{parent}", "192.0.2.112"), "request_id": request_id},
            create(f"c.{parent}", "192.0.2.113", key=key),
            create(f"c.{parent}", "192.0.2.113", key=key),
            create(f"d.{parent}", "192.0.2.114", key=key),
        ],
    )

    assert (results[0]["status"], results[0]["body"]["request_id"]) == (202, request_id)
    assert (results[1]["status"], results[1]["body"]["code"]) == (409, "request_id_in_use")
    assert results[2]["status"] == results[3]["status"] == 202
    assert results[3]["replayed"] is True
    assert results[3]["body"]["request_id"] == results[2]["body"]["request_id"]
    assert (results[4]["status"], results[4]["body"]["code"]) == (409, "idempotency_key_reused")
    assert stack.get(f"/api/v1/records/b.{parent}/A").status_code == 404  # the refused one changed nothing
