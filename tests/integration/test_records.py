"""Every record type, the v1 lifecycle, drift and automatic PTRs — on the real BIND."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.integration.dns_helpers import change_outside_hostmaster, served, texts
from tests.support import (
    OVERRIDE_ZONE,
    ZONE,
    Bind,
    unique_label,
    wait_for_terminal,
)

pytestmark = pytest.mark.integration


def succeeded(stack: httpx.Client, answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    final = wait_for_terminal(stack, answer.json()["request_id"])
    assert final["status"] == "succeeded", final
    return final


def record(stack: httpx.Client, name: str, rtype: str) -> dict[str, Any]:
    answer = stack.get(f"/api/v1/records/{name}/{rtype}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize(
    ("rtype", "owner", "values", "stored"),
    [
        ("A", "{label}.{zone}", ["192.0.2.1", "192.0.2.2"], ["192.0.2.1", "192.0.2.2"]),
        ("AAAA", "{label}.{zone}", ["2001:DB8:0:0:0:0:0:1"], ["2001:db8::1"]),
        ("CNAME", "{label}.{zone}", ["Target.Example.NET"], ["target.example.net."]),
        ("TXT", "{label}.{zone}", ['say "hi"', "x" * 300], None),
        (
            "MX",
            "{zone}",
            ["10 mail.example.net", "20 MX2.example.net."],
            ["10 mail.example.net.", "20 mx2.example.net."],
        ),
        ("SRV", "_sip._tcp.{label}.{zone}", ["10 60 5060 sip.example.net"], ["10 60 5060 sip.example.net."]),
        ("CAA", "{label}.{zone}", ['0 issue "letsencrypt.org"', "0 iodef mailto:security@example.net"], None),
        ("NS", "{label}.{zone}", ["ns1.example.net", "ns2.example.net"], ["ns1.example.net.", "ns2.example.net."]),
        ("PTR", "{octet}.2.0.192.in-addr.arpa", ["host.example.net"], ["host.example.net."]),
    ],
    ids=lambda value: value if isinstance(value, str) and value.isupper() else None,
)
def test_each_type_is_served_exactly_as_the_api_returns_it(
    stack: httpx.Client, bind: Bind, rtype: str, owner: str, values: list[str], stored: list[str] | None
) -> None:
    label = unique_label(rtype.lower())
    zone = ZONE if rtype != "MX" else f"{label}.{ZONE}"  # an MX at a name of its own
    name = owner.format(label=label, zone=zone, octet=int(label[-4:], 16) % 99 + 1)  # 1-99: not the PTR test's

    succeeded(stack, stack.post("/api/v1/records", json={"name": name, "type": rtype, "values": values, "ttl": 600}))

    shown = record(stack, name, rtype)
    if stored is not None:
        assert shown["values"] == sorted(stored)
    assert shown["status"] == "active"
    rrset = served(bind, name, rtype)
    assert texts(rrset) == sorted(shown["values"])
    assert rrset is not None
    assert rrset.ttl == shown["ttl"] == 600


def test_the_v1_lifecycle_create_replace_delete(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('life')}.{ZONE}."
    succeeded(stack, stack.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.10"]}))
    assert record(stack, name, "A")["ttl"] == 3600  # the zone's default

    again = stack.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.11"]})
    assert again.status_code == 409
    assert again.json()["code"] == "rrset_exists"

    final = succeeded(stack, stack.put(f"/api/v1/records/{name}/A", json={"values": ["192.0.2.12", "192.0.2.13"]}))
    assert [(c["action"], c["before"]["values"], c["after"]["values"]) for c in final["changes"]] == [
        ("update", ["192.0.2.10"], ["192.0.2.12", "192.0.2.13"])
    ]
    assert texts(served(bind, name, "A")) == ["192.0.2.12", "192.0.2.13"]
    assert record(stack, name, "A")["version"] == 2

    final = succeeded(stack, stack.delete(f"/api/v1/records/{name}/A"))
    assert [c["action"] for c in final["changes"]] == ["delete"]
    assert served(bind, name, "A") is None
    assert stack.get(f"/api/v1/records/{name}/A").status_code == 404
    missing = stack.delete(f"/api/v1/records/{name}/A")
    assert missing.status_code == 404
    assert missing.json()["code"] == "rrset_not_found"


def test_put_creates_an_absent_rrset_and_the_same_put_again_changes_nothing(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('put')}.{ZONE}"
    body = {"values": ["192.0.2.20"], "ttl": 120}
    first = succeeded(stack, stack.put(f"/api/v1/records/{name}/A", json=body))
    assert [c["action"] for c in first["changes"]] == ["create"]

    second = succeeded(stack, stack.put(f"/api/v1/records/{name}/A", json=body))

    assert second["changes"] == []
    assert [event["step"] for event in second["events"]] == ["received", "validated", "succeeded"]
    assert texts(served(bind, name, "A")) == ["192.0.2.20"]


def test_list_filters_and_pages_with_a_cursor(stack: httpx.Client) -> None:
    parent = f"{unique_label('page')}.{ZONE}"
    names = sorted(f"h{index}.{parent}." for index in range(5))
    changes = [{"op": "create", "name": name, "type": "TXT", "values": ["page"]} for name in names]
    succeeded(stack, stack.post(f"/api/v2/zones/{ZONE}/changes", json={"changes": changes}))

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"zone": ZONE, "type": "TXT", "status": "active", "limit": 50}
        if cursor:
            params["cursor"] = cursor
        page = stack.get("/api/v1/records", params=params).json()
        seen += [item["name"] for item in page["items"] if item["name"].endswith(parent + ".")]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None or pages > 100:
            break
    assert seen == names

    small = stack.get("/api/v1/records", params={"zone": ZONE, "type": "TXT", "limit": 2}).json()
    assert len(small["items"]) == 2
    assert small["next_cursor"]
    one = stack.get("/api/v1/records", params={"name": names[0], "type": "TXT"}).json()
    assert [item["name"] for item in one["items"]] == [names[0]]
    assert stack.get("/api/v1/records", params={"cursor": "not-a-cursor"}).status_code == 422


def test_an_outside_change_is_detected_as_drift_and_not_overwritten(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('drift')}.{ZONE}"
    succeeded(stack, stack.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.30"]}))
    change_outside_hostmaster(bind, ZONE, name, "A", ["192.0.2.99"])

    answer = stack.put(f"/api/v1/records/{name}/A", json={"values": ["192.0.2.31"]})
    final = wait_for_terminal(stack, answer.json()["request_id"])

    assert final["status"] == "failed"
    assert final["error_code"] == "drift_detected"
    assert "192.0.2.99" in final["error_detail"]
    assert "192.0.2.30" in final["error_detail"]
    assert final["changes"][0]["status"] == "failed"
    assert texts(served(bind, name, "A")) == ["192.0.2.99"]  # not overwritten
    assert record(stack, name, "A")["status"] == "error"


def test_a_zone_with_drift_policy_override_replaces_outside_changes(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('over')}.{OVERRIDE_ZONE}"
    succeeded(stack, stack.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.40"]}))
    change_outside_hostmaster(bind, OVERRIDE_ZONE, name, "A", ["192.0.2.98"])

    succeeded(stack, stack.put(f"/api/v1/records/{name}/A", json={"values": ["192.0.2.41"]}))

    assert texts(served(bind, name, "A")) == ["192.0.2.41"]


def test_automatic_ptrs_follow_create_replace_and_delete(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('ptr')}.{ZONE}."
    low, high = random.sample(range(100, 250), 2)  # this test's own addresses in 192.0.2.0/24
    first, second = f"192.0.2.{low}", f"192.0.2.{high}"
    v6 = f"2001:db8::{low:x}"

    final = succeeded(
        stack, stack.post("/api/v1/records", json={"name": name, "type": "A", "values": [first], "ptr": True})
    )
    assert {(c["type"], c["action"]) for c in final["changes"]} == {("A", "create"), ("PTR", "create")}
    assert texts(served(bind, f"{low}.2.0.192.in-addr.arpa", "PTR")) == [name]
    succeeded(stack, stack.post("/api/v1/records", json={"name": name, "type": "AAAA", "values": [v6], "ptr": True}))
    reverse6 = ".".join(reversed(f"20010db8{'0' * 20}{low:04x}")) + ".ip6.arpa"
    assert texts(served(bind, reverse6, "PTR")) == [name]

    succeeded(stack, stack.put(f"/api/v1/records/{name}/A", json={"values": [second]}))
    assert served(bind, f"{low}.2.0.192.in-addr.arpa", "PTR") is None
    assert texts(served(bind, f"{high}.2.0.192.in-addr.arpa", "PTR")) == [name]

    succeeded(stack, stack.delete(f"/api/v1/records/{name}/A"))
    assert served(bind, f"{high}.2.0.192.in-addr.arpa", "PTR") is None
    succeeded(stack, stack.delete(f"/api/v1/records/{name}/AAAA"))
    assert served(bind, reverse6, "PTR") is None
