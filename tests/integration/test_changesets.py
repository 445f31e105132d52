"""v2 change sets on the real BIND: a large one lands, a dry run changes nothing, the guard holds."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.dns_helpers import served, served_at, texts
from tests.support import BULK_ZONE, GONE_ZONE, GUARD_ZONE, ZONE, Bind, unique_label, wait_for_terminal

pytestmark = pytest.mark.integration


def post_changes(stack: httpx.Client, zone: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return stack.post(f"/api/v2/zones/{zone}/changes", json=body, headers=headers)


def test_a_500_record_change_set_lands_in_few_updates_and_is_served(stack: httpx.Client, bind: Bind) -> None:
    parent = f"{unique_label('bulk')}.{BULK_ZONE}"
    changes = [
        {"op": "upsert", "name": f"h{index}.{parent}", "type": "A", "values": [f"198.51.100.{index % 250 + 1}"]}
        for index in range(500)
    ]

    answer = post_changes(stack, BULK_ZONE, {"changes": changes})

    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert len(accepted["changes"]) == 500
    assert {change["action"] for change in accepted["changes"]} == {"create"}
    final = wait_for_terminal(stack, accepted["request_id"], timeout=120)
    assert final["status"] == "succeeded", final["error_detail"]
    assert {change["status"] for change in final["changes"]} == {"succeeded"}
    sent = [event for event in final["events"] if event["step"] == "dns_sent"]
    assert sum(event["detail"]["messages"] for event in sent) <= 2
    for index in range(0, 500, 7):
        assert texts(served(bind, f"h{index}.{parent}", "A")) == [f"198.51.100.{index % 250 + 1}"]
    assert texts(served(bind, f"h499.{parent}", "A")) == ["198.51.100.250"]


def test_mixed_operations_apply_together(stack: httpx.Client, bind: Bind) -> None:
    host = f"{unique_label('mix')}.{ZONE}"
    assert (
        wait_for_terminal(
            stack,
            post_changes(
                stack,
                ZONE,
                {
                    "changes": [
                        {"op": "create", "name": host, "type": "A", "values": ["192.0.2.1", "192.0.2.2"]},
                        {"op": "create", "name": f"old.{host}", "type": "TXT", "values": ["bye"]},
                    ]
                },
            ).json()["request_id"],
        )["status"]
        == "succeeded"
    )

    answer = post_changes(
        stack,
        ZONE,
        {
            "changes": [
                {"op": "remove", "name": host, "type": "A", "values": ["192.0.2.1"]},
                {"op": "add", "name": host, "type": "A", "values": ["192.0.2.3"]},
                {"op": "delete", "name": f"old.{host}", "type": "TXT"},
                {"op": "upsert", "name": f"mail.{host}", "type": "A", "values": ["192.0.2.25"]},
                {"op": "create", "name": host, "type": "MX", "values": [f"10 mail.{host}"]},
            ]
        },
    )

    assert answer.status_code == 202, answer.text
    final = wait_for_terminal(stack, answer.json()["request_id"])
    assert final["status"] == "succeeded", final
    assert [(c["name"], c["type"], c["action"]) for c in final["changes"]] == [
        (f"{host}.", "A", "update"),
        (f"old.{host}.", "TXT", "delete"),
        (f"mail.{host}.", "A", "create"),
        (f"{host}.", "MX", "create"),
    ]
    assert texts(served(bind, host, "A")) == ["192.0.2.2", "192.0.2.3"]
    assert served(bind, f"old.{host}", "TXT") is None
    assert texts(served(bind, host, "MX")) == [f"10 mail.{host}."]


def test_a_dry_run_returns_the_plan_and_changes_nothing(stack: httpx.Client, bind: Bind) -> None:
    host = f"{unique_label('dry')}.{ZONE}"
    assert (
        wait_for_terminal(
            stack,
            post_changes(
                stack,
                ZONE,
                {
                    "changes": [
                        {"op": "create", "name": host, "type": "A", "values": ["192.0.2.5"], "ttl": 300},
                    ]
                },
            ).json()["request_id"],
        )["status"]
        == "succeeded"
    )
    records_before = stack.get("/api/v1/records", params={"zone": ZONE, "limit": 1000}).json()
    request_id = str(uuid.uuid4())

    answer = post_changes(
        stack,
        ZONE,
        {
            "dry_run": True,
            "changes": [
                {"op": "upsert", "name": host, "type": "A", "values": ["192.0.2.6"]},
                {"op": "create", "name": f"new.{host}", "type": "TXT", "values": ["hello world"], "ttl": 120},
            ],
        },
        **{"X-Request-ID": request_id},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "dry_run": True,
        "changes": [
            {
                "zone": f"{ZONE}.",
                "name": f"{host}.",
                "type": "A",
                "action": "update",
                "before": {"ttl": 300, "values": ["192.0.2.5"]},
                "after": {"ttl": 300, "values": ["192.0.2.6"]},
            },
            {
                "zone": f"{ZONE}.",
                "name": f"new.{host}.",
                "type": "TXT",
                "action": "create",
                "before": None,
                "after": {"ttl": 120, "values": ['"hello world"']},
            },
        ],
    }
    assert stack.get("/api/v1/records", params={"zone": ZONE, "limit": 1000}).json() == records_before
    assert stack.get(f"/api/v1/requests/{request_id}").status_code == 404
    assert texts(served(bind, host, "A")) == ["192.0.2.5"]
    assert served(bind, f"new.{host}", "TXT") is None


def test_a_change_set_is_validated_together_and_all_or_nothing(stack: httpx.Client) -> None:
    host = f"{unique_label('atomic')}.{ZONE}"
    answer = post_changes(
        stack,
        ZONE,
        {
            "changes": [
                {"op": "create", "name": host, "type": "A", "values": ["192.0.2.7"]},
                {"op": "create", "name": f"bad..{host}", "type": "A", "values": ["192.0.2.8"]},
                {"op": "create", "name": f"x.{host}", "type": "A", "values": ["not an address"]},
                {"op": "create", "name": f"y.{host}", "type": "A", "values": ["192.0.2.9"], "ttl": 1},
                {"op": "create", "name": "www.elsewhere.example", "type": "A", "values": ["192.0.2.9"]},
            ]
        },
    )

    assert answer.status_code == 422
    assert [v["field"] for v in answer.json()["violations"]] == [
        "changes[1].name",
        "changes[2].values[0]",
        "changes[3].ttl",
        "changes[4].name",
    ]
    assert stack.get(f"/api/v1/records/{host}/A").status_code == 404


def test_the_guard_refuses_a_mass_delete_and_force_passes_it(stack: httpx.Client, bind: Bind) -> None:
    parent = f"{unique_label('guard')}.{GUARD_ZONE}"
    names = [f"g{index}.{parent}" for index in range(10)]
    created = post_changes(
        stack,
        GUARD_ZONE,
        {"changes": [{"op": "create", "name": name, "type": "TXT", "values": ["keep"]} for name in names]},
    )
    assert wait_for_terminal(stack, created.json()["request_id"])["status"] == "succeeded"
    existing = stack.get(f"/api/v1/zones/{GUARD_ZONE}").json()["rrsets"]
    deletes = {"changes": [{"op": "delete", "name": name, "type": "TXT"} for name in names]}

    refused = post_changes(stack, GUARD_ZONE, deletes)

    assert refused.status_code == 409
    assert refused.json()["code"] == "mass_change_refused"
    assert "force" in refused.json()["detail"]
    assert stack.get(f"/api/v1/zones/{GUARD_ZONE}").json()["rrsets"] == existing
    assert texts(served(bind, names[0], "TXT")) == ['"keep"']

    forced = post_changes(stack, GUARD_ZONE, {**deletes, "force": True})

    assert forced.status_code == 202, forced.text
    assert wait_for_terminal(stack, forced.json()["request_id"])["status"] == "succeeded"
    assert served(bind, names[0], "TXT") is None
    assert served_at(bind.host, bind.port, names[-1], "TXT") is None


def test_a_change_set_for_an_unregistered_zone_is_a_404(stack: httpx.Client) -> None:
    answer = post_changes(stack, "nowhere.test", {"changes": [{"op": "delete", "name": "a.nowhere.test", "type": "A"}]})

    assert answer.status_code == 404
    assert answer.json()["code"] == "zone_not_found"


def test_the_zone_registry_updates_policy_and_refuses_to_drop_a_zone_with_records(stack: httpx.Client) -> None:
    patched = stack.patch(f"/api/v1/zones/{GUARD_ZONE}", json={"max_ttl": 7200, "allow_wildcards": False})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["max_ttl"], patched.json()["allow_wildcards"]) == (7200, False)
    wildcard = post_changes(
        stack, GUARD_ZONE, {"changes": [{"op": "create", "name": f"*.{GUARD_ZONE}", "type": "TXT", "values": ["x"]}]}
    )
    assert wildcard.status_code == 422
    assert stack.patch(f"/api/v1/zones/{GUARD_ZONE}", json={"min_ttl": 90000}).status_code == 422
    assert stack.patch(f"/api/v1/zones/{GUARD_ZONE}", json={"drift_policy": None}).status_code == 422

    held = stack.delete(f"/api/v1/zones/{ZONE}")
    assert held.status_code == 409
    assert held.json()["code"] == "zone_not_empty"

    empty = f"{unique_label('empty')}.test"
    assert (
        stack.post("/api/v1/zones", json={"name": empty, "primary_host": "127.0.0.1", "tsig_key_name": "k"}).status_code
        == 201
    )
    assert stack.get(f"/api/v1/zones/{empty}").json()["rrsets"] == 0
    assert stack.delete(f"/api/v1/zones/{empty}").status_code == 204
    assert stack.get(f"/api/v1/zones/{empty}").status_code == 404


def test_a_cname_replaces_an_a_record_in_one_change_set(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('swap')}.{ZONE}"
    first = post_changes(
        stack, ZONE, {"changes": [{"op": "create", "name": name, "type": "A", "values": ["192.0.2.60"]}]}
    )
    assert wait_for_terminal(stack, first.json()["request_id"])["status"] == "succeeded"

    swap = post_changes(
        stack,
        ZONE,
        {
            "changes": [
                {"op": "create", "name": name, "type": "CNAME", "values": [f"target.{ZONE}"]},
                {"op": "delete", "name": name, "type": "A"},
            ]
        },
    )

    assert swap.status_code == 202, swap.text
    final = wait_for_terminal(stack, swap.json()["request_id"])
    assert final["status"] == "succeeded", final["error_detail"]
    assert texts(served(bind, name, "CNAME")) == [f"target.{ZONE}."]
    assert served(bind, name, "A") is None


def test_a_delegation_with_in_zone_servers_and_their_glue_is_served(stack: httpx.Client, bind: Bind) -> None:
    child = f"{unique_label('child')}.{ZONE}"
    answer = post_changes(
        stack,
        ZONE,
        {
            "changes": [
                {"op": "create", "name": child, "type": "NS", "values": [f"ns1.{child}", "ns.example.net"]},
                {"op": "create", "name": f"ns1.{child}", "type": "A", "values": ["192.0.2.53"]},
            ]
        },
    )

    assert answer.status_code == 202, answer.text
    final = wait_for_terminal(stack, answer.json()["request_id"])
    assert final["status"] == "succeeded", final["error_detail"]
    assert texts(served(bind, child, "NS")) == ["ns.example.net.", f"ns1.{child}."]
    assert texts(served(bind, f"ns1.{child}", "A")) == ["192.0.2.53"]

    inside = post_changes(
        stack, ZONE, {"changes": [{"op": "create", "name": f"www.{child}", "type": "A", "values": ["192.0.2.54"]}]}
    )
    assert inside.status_code == 422
    assert "inside the delegation" in inside.json()["violations"][0]["message"]


def test_a_zone_that_would_take_over_managed_records_cannot_be_registered(stack: httpx.Client) -> None:
    child = f"{unique_label('over')}.{ZONE}"
    made = post_changes(
        stack, ZONE, {"changes": [{"op": "create", "name": f"www.{child}", "type": "TXT", "values": ["x"]}]}
    )
    assert wait_for_terminal(stack, made.json()["request_id"])["status"] == "succeeded"

    answer = stack.post("/api/v1/zones", json={"name": child, "primary_host": "127.0.0.1", "tsig_key_name": "k"})

    assert answer.status_code == 409
    assert answer.json()["code"] == "zone_overlaps_records"


def test_an_emptied_zone_can_be_unregistered_and_its_history_stays(stack: httpx.Client) -> None:
    """A zone with a past: once empty it may go, and its requests still name it."""
    name = f"www.{GONE_ZONE}"
    made = post_changes(stack, GONE_ZONE, {"changes": [{"op": "create", "name": name, "type": "TXT", "values": ["x"]}]})
    assert wait_for_terminal(stack, made.json()["request_id"])["status"] == "succeeded"
    assert stack.delete(f"/api/v1/zones/{GONE_ZONE}").status_code == 409
    gone = post_changes(stack, GONE_ZONE, {"changes": [{"op": "delete", "name": name, "type": "TXT"}]})
    assert wait_for_terminal(stack, gone.json()["request_id"])["status"] == "succeeded"

    assert stack.delete(f"/api/v1/zones/{GONE_ZONE}").status_code == 204

    assert stack.get(f"/api/v1/zones/{GONE_ZONE}").status_code == 404
    history = stack.get(f"/api/v1/requests/{made.json()['request_id']}").json()
    assert [(change["zone"], change["name"], change["action"]) for change in history["changes"]] == [
        (f"{GONE_ZONE}.", f"{name}.", "create")
    ]
