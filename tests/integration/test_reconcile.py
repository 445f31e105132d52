"""Reconciliation on the real BIND: zones changed behind Hostmaster's back are found, reported and repaired."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import psycopg2
import pytest

from tests.integration.dns_helpers import change_outside_hostmaster, delete_outside_hostmaster, served, texts
from tests.support import (
    GUARD_ZONE,
    RECONCILE_ZONE,
    REPAIR_ZONE,
    STALE_ZONE,
    ZONE,
    Bind,
    Process,
    hostmaster,
    make_client,
    start_process,
    unique_label,
    wait_for_terminal,
    wait_until,
)

pytestmark = pytest.mark.integration


def provision(stack: httpx.Client, zone: str, *changes: dict[str, Any]) -> None:
    answer = stack.post(f"/api/v2/zones/{zone}/changes", json={"changes": list(changes)})
    assert answer.status_code == 202, answer.text
    final = wait_for_terminal(stack, answer.json()["request_id"])
    assert final["status"] == "succeeded", final["error_detail"]


def reconcile(stack: httpx.Client, zone: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ask for a reconciliation, as an admin would, and wait for its report."""
    path = f"/api/v1/zones/{zone}/reconcile"
    answer = stack.post(path, json=body) if body is not None else stack.post(path)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "queued"
    assert answer.headers["location"] == accepted["status_url"]
    return finished(stack, accepted["status_url"])


def finished(stack: httpx.Client, url: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        report: dict[str, Any] = stack.get(url).json()
        return report if report["status"] not in ("queued", "running") else None

    report: dict[str, Any] = wait_until(done, timeout=timeout, what=f"the reconciliation {url}", interval=0.2)
    return report


def difference(report: dict[str, Any], name: str, rtype: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [d for d in report["differences"] if (d["name"], d["type"]) == (name, rtype)]
    assert len(found) == 1, f"{name} {rtype} is not among the differences: {report['differences']}"
    return found[0]


def metrics(stack: httpx.Client) -> dict[str, float]:
    """The /metrics samples, by `name{labels}`."""
    answer = httpx.get(stack.base_url.join("/metrics"), timeout=10)  # no key needed
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_drift_made_behind_hostmasters_back_is_reported_and_not_repaired(stack: httpx.Client, bind: Bind) -> None:
    www, old, hand = (f"{unique_label(prefix)}.{RECONCILE_ZONE}" for prefix in ("www", "old", "hand"))
    provision(
        stack,
        RECONCILE_ZONE,
        {"op": "create", "name": www, "type": "A", "values": ["192.0.2.10"], "ttl": 300},
        {"op": "create", "name": old, "type": "TXT", "values": ["still here"], "ttl": 600},
    )
    change_outside_hostmaster(bind, RECONCILE_ZONE, www, "A", ["192.0.2.99"], ttl=300)
    delete_outside_hostmaster(bind, RECONCILE_ZONE, old, "TXT")
    change_outside_hostmaster(bind, RECONCILE_ZONE, hand, "A", ["192.0.2.77"], ttl=120)

    report = reconcile(stack, RECONCILE_ZONE)

    assert report["status"] == "drift"
    assert (report["trigger"], report["repair"], report["requested_by"]) == ("on_demand", False, "test-admin")
    assert difference(report, f"{www}.", "A") == {
        "name": f"{www}.",
        "type": "A",
        "kind": "different",
        "desired": {"ttl": 300, "values": ["192.0.2.10"]},
        "served": {"ttl": 300, "values": ["192.0.2.99"]},
        "repaired": False,
        "error": None,
    }
    missing = difference(report, f"{old}.", "TXT")
    assert (missing["kind"], missing["desired"], missing["served"]) == (
        "missing",
        {"ttl": 600, "values": ['"still here"']},
        None,
    )
    unmanaged = difference(report, f"{hand}.", "A")
    assert (unmanaged["kind"], unmanaged["desired"], unmanaged["served"]) == (
        "unmanaged",
        None,
        {"ttl": 120, "values": ["192.0.2.77"]},
    )
    assert difference(report, f"ns1.{RECONCILE_ZONE}.", "A")["kind"] == "unmanaged"  # the zone file's own
    assert not [d for d in report["differences"] if d["type"] == "SOA" or d["name"] == f"{RECONCILE_ZONE}."]
    assert report["drifted"] >= 2
    assert report["repaired"] == 0
    assert texts(served(bind, www, "A")) == ["192.0.2.99"]  # reported only: nothing was changed
    assert served(bind, old, "TXT") is None

    assert stack.get(f"/api/v1/zones/{RECONCILE_ZONE}/reconciliation").json() == report
    samples = metrics(stack)
    assert samples[f'hostmaster_zone_drift_rrsets{{zone="{RECONCILE_ZONE}."}}'] == report["drifted"]
    assert samples[f'hostmaster_zone_unmanaged_rrsets{{zone="{RECONCILE_ZONE}."}}'] == report["unmanaged"]
    finished_at = samples[f'hostmaster_zone_reconciled_timestamp_seconds{{zone="{RECONCILE_ZONE}."}}']
    assert abs(finished_at - time.time()) < 60
    assert samples['hostmaster_requests{status="succeeded"}'] >= 1


def test_repair_serves_the_desired_state_again_and_leaves_unmanaged_rrsets_alone(
    stack: httpx.Client, bind: Bind
) -> None:
    www, old, hand = (f"{unique_label(prefix)}.{RECONCILE_ZONE}" for prefix in ("www", "old", "hand"))
    provision(
        stack,
        RECONCILE_ZONE,
        {"op": "create", "name": www, "type": "A", "values": ["192.0.2.10"], "ttl": 300},
        {"op": "create", "name": old, "type": "MX", "values": [f"10 mail.{RECONCILE_ZONE}"], "ttl": 300},
        {"op": "create", "name": f"mail.{RECONCILE_ZONE}", "type": "A", "values": ["192.0.2.25"], "ttl": 300},
    )
    change_outside_hostmaster(bind, RECONCILE_ZONE, www, "A", ["192.0.2.99"])
    delete_outside_hostmaster(bind, RECONCILE_ZONE, old, "MX")
    change_outside_hostmaster(bind, RECONCILE_ZONE, hand, "TXT", ['"made by hand"'])
    # While the zone's drift policy is fail, a write to the drifted RRset fails and leaves it in error.
    put = stack.put(f"/api/v1/records/{www}/A", json={"values": ["192.0.2.11"]})
    assert wait_for_terminal(stack, put.json()["request_id"])["error_code"] == "drift_detected"

    report = reconcile(stack, RECONCILE_ZONE, {"repair": True})

    assert report["status"] == "repaired", report
    assert report["repair"] is True
    fixed = difference(report, f"{www}.", "A")
    assert (fixed["kind"], fixed["desired"]["values"], fixed["served"]["values"], fixed["repaired"]) == (
        "different",
        ["192.0.2.11"],
        ["192.0.2.99"],
        True,
    )
    assert difference(report, f"{old}.", "MX")["repaired"] is True
    assert difference(report, f"{hand}.", "TXT")["repaired"] is False
    assert report["repaired"] == report["drifted"]
    assert texts(served(bind, www, "A")) == ["192.0.2.11"]
    assert served(bind, www, "A").ttl == 300  # type: ignore[union-attr]
    assert texts(served(bind, old, "MX")) == [f"10 mail.{RECONCILE_ZONE}."]
    assert texts(served(bind, hand, "TXT")) == ['"made by hand"']  # unmanaged: never touched
    record = stack.get(f"/api/v1/records/{www}/A").json()
    assert (record["status"], record["values"]) == ("active", ["192.0.2.11"])

    again = reconcile(stack, RECONCILE_ZONE, {"repair": False})
    assert again["status"] == "in_sync"
    assert {d["kind"] for d in again["differences"]} == {"unmanaged"}
    gauge = metrics(stack)[f'hostmaster_zone_drift_rrsets{{zone="{RECONCILE_ZONE}."}}']
    assert gauge == 0


def test_a_zone_serving_its_desired_state_is_in_sync(stack: httpx.Client) -> None:
    name = f"{unique_label('sync')}.{REPAIR_ZONE}"
    provision(
        stack,
        REPAIR_ZONE,
        {"op": "create", "name": name, "type": "A", "values": ["192.0.2.1", "192.0.2.2"]},
        {"op": "create", "name": name, "type": "TXT", "values": ["a" * 300]},  # two strings on the wire
    )

    report = reconcile(stack, REPAIR_ZONE, {"repair": False})

    assert report["status"] == "in_sync", report
    assert (report["drifted"], report["repaired"], report["skipped"]) == (0, 0, 0)
    assert report["compared"] >= 2
    assert [(d["name"], d["kind"]) for d in report["differences"]] == [(f"ns1.{REPAIR_ZONE}.", "unmanaged")]
    assert report["error"] is None


def test_a_zone_whose_policy_is_repair_is_repaired_without_asking(stack: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('policy')}.{REPAIR_ZONE}"
    provision(stack, REPAIR_ZONE, {"op": "create", "name": name, "type": "AAAA", "values": ["2001:db8::1"]})
    change_outside_hostmaster(bind, REPAIR_ZONE, name, "AAAA", ["2001:db8::bad"])
    assert stack.get(f"/api/v1/zones/{REPAIR_ZONE}").json()["reconcile"] == "repair"

    report = reconcile(stack, REPAIR_ZONE)

    assert (report["status"], report["repair"]) == ("repaired", True)
    assert difference(report, f"{name}.", "AAAA")["repaired"] is True
    assert texts(served(bind, name, "AAAA")) == ["2001:db8::1"]


def test_a_zone_that_cannot_be_transferred_is_reported_as_an_error(stack: httpx.Client) -> None:
    report = reconcile(stack, STALE_ZONE)  # our secret for its key is not the server's

    assert report["status"] == "error"
    assert report["error"].startswith("tsig_bad_signature: ")
    assert report["differences"] == []
    assert metrics(stack)[f'hostmaster_zone_reconcile_failed{{zone="{STALE_ZONE}."}}'] == 1


def test_only_an_admin_may_ask_and_a_granted_reader_may_read(
    stack: httpx.Client, stack_env: dict[str, str], api: Process
) -> None:
    report = reconcile(stack, RECONCILE_ZONE)
    team = make_client(stack_env, f"team-{unique_label('r')}", RECONCILE_ZONE)
    other = make_client(stack_env, f"other-{unique_label('r')}", GUARD_ZONE)

    with httpx.Client(base_url=api.url, timeout=10, headers={"Authorization": f"Bearer {team}"}) as writer:
        refused = writer.post(f"/api/v1/zones/{RECONCILE_ZONE}/reconcile", json={"repair": True})
        assert refused.status_code == 403
        assert refused.json()["code"] == "scope_missing"
        assert refused.headers["content-type"] == "application/problem+json"
        read = writer.get(f"/api/v1/zones/{RECONCILE_ZONE}/reconciliation/{report['id']}")
        assert (read.status_code, read.json()) == (200, report)
    with httpx.Client(base_url=api.url, timeout=10, headers={"Authorization": f"Bearer {other}"}) as stranger:
        hidden = stranger.get(f"/api/v1/zones/{RECONCILE_ZONE}/reconciliation")
        assert hidden.status_code == 403
        assert hidden.json()["code"] == "zone_not_granted"


def test_unknown_zones_reports_and_bodies_are_refused(stack: httpx.Client) -> None:
    for answer in (
        stack.post("/api/v1/zones/nowhere.test/reconcile"),
        stack.get("/api/v1/zones/nowhere.test/reconciliation"),
    ):
        assert answer.status_code == 404
        assert answer.json()["code"] == "zone_not_found"
    fresh = f"{unique_label('fresh')}.test"
    assert (
        stack.post("/api/v1/zones", json={"name": fresh, "primary_host": "127.0.0.1", "tsig_key_name": "k"}).status_code
        == 201
    )
    try:
        never = stack.get(f"/api/v1/zones/{fresh}/reconciliation")
        assert never.status_code == 404
        assert never.json()["code"] == "reconciliation_not_found"
    finally:
        stack.delete(f"/api/v1/zones/{fresh}")
    assert stack.get(f"/api/v1/zones/{RECONCILE_ZONE}/reconciliation/2147483000").status_code == 404
    bad = stack.post(f"/api/v1/zones/{RECONCILE_ZONE}/reconcile", json={"repair": "yes please"})
    assert bad.status_code == 422
    assert [v["field"] for v in bad.json()["violations"]] == ["repair"]


def test_the_cli_reconciles_waits_and_exits_non_zero_while_drift_remains(
    stack: httpx.Client, stack_env: dict[str, str], bind: Bind
) -> None:
    name = f"{unique_label('cli')}.{RECONCILE_ZONE}"
    provision(stack, RECONCILE_ZONE, {"op": "create", "name": name, "type": "A", "values": ["192.0.2.40"]})
    change_outside_hostmaster(bind, RECONCILE_ZONE, name, "A", ["192.0.2.41"])

    reported = hostmaster(stack_env, "reconcile", RECONCILE_ZONE, "--no-repair", "--wait", "30")

    assert reported.returncode == 1, reported.stderr
    assert f"zone {RECONCILE_ZONE}.: drift" in reported.stdout
    assert f"different {name}. A: desired 3600 192.0.2.40; served 300 192.0.2.41" in reported.stdout
    assert texts(served(bind, name, "A")) == ["192.0.2.41"]

    repaired = hostmaster(stack_env, "reconcile", RECONCILE_ZONE, "--repair", "--wait", "30")

    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"zone {RECONCILE_ZONE}.: repaired" in repaired.stdout
    assert texts(served(bind, name, "A")) == ["192.0.2.40"]
    latest = stack.get(f"/api/v1/zones/{RECONCILE_ZONE}/reconciliation").json()
    assert (latest["requested_by"], latest["status"]) == ("cli", "repaired")


def test_the_recovery_process_reconciles_each_zone_once_per_interval(
    stack: httpx.Client, stack_env: dict[str, str]
) -> None:
    recent = reconcile(stack, RECONCILE_ZONE)  # asked for just now: not due for an hour
    env = {**stack_env, "HOSTMASTER_RECOVERY_INTERVAL_S": "0.5", "HOSTMASTER_RECONCILE_INTERVAL_S": "3600"}
    process = start_process("recovery-reconcile", ["-m", "service.cli", "run", "recovery"], env)
    try:

        def periodic() -> dict[str, Any] | None:
            answer = stack.get(f"/api/v1/zones/{GUARD_ZONE}/reconciliation")
            report: dict[str, Any] | None = answer.json() if answer.status_code == 200 else None
            return report if report and report["trigger"] == "periodic" else None

        scheduled = wait_until(periodic, timeout=30, what="a periodic reconciliation of guard.test", interval=0.3)
        report = finished(stack, f"/api/v1/zones/{GUARD_ZONE}/reconciliation/{scheduled['id']}")
        time.sleep(1.5)  # three more passes: nothing more is due
    finally:
        process.stop()

    assert report["status"] in ("in_sync", "drift"), report
    assert report["requested_by"] is None
    assert stack.get(f"/api/v1/zones/{RECONCILE_ZONE}/reconciliation").json()["id"] == recent["id"]
    assert stack.get(f"/api/v1/zones/{GUARD_ZONE}/reconciliation").json()["id"] == scheduled["id"]
    lines = process.log_lines()
    assert all(line["component"] == "recovery" for line in lines)
    queued = [line for line in lines if re.match(r"reconciliation \d+ of zone guard\.test\. queued", line["message"])]
    assert len(queued) == 1, queued


def test_a_report_s_differences_are_read_a_page_at_a_time(stack: httpx.Client, database_url: str) -> None:
    differences = [
        {"name": f"h{index}.{ZONE}.", "type": "A", "kind": "unmanaged", "desired": None,
         "served": {"ttl": 300, "values": ["192.0.2.1"]}, "repaired": False, "error": None}
        for index in range(2_500)
    ]  # fmt: skip
    dsn = database_url.replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(dsn, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO zone_reconciliation (zone_id, zone, trigger, repair, status, attempts, requested_at,"
            " finished_at, compared, skipped, drifted, repaired, unmanaged, differences)"
            " SELECT id, name, 'periodic', false, 'drift', 1, now() - interval '1 day', now() - interval '1 day',"
            " 0, 0, 0, 0, %s, %s FROM zone WHERE name = %s RETURNING id",
            (len(differences), json.dumps(differences), f"{ZONE}."),
        )
        (report_id,) = cursor.fetchone()

    names: list[str] = []
    cursor_given: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 1000, **({"cursor": cursor_given} if cursor_given else {})}
        page = stack.get(f"/api/v1/zones/{ZONE}/reconciliation/{report_id}", params=params).json()
        assert page["differences_total"] == 2_500
        assert len(page["differences"]) <= 1000
        names += [difference["name"] for difference in page["differences"]]
        pages += 1
        cursor_given = page["next_cursor"]
        if cursor_given is None:
            break

    assert pages == 3
    assert names == [difference["name"] for difference in differences]  # each once, in order
    bad = stack.get(f"/api/v1/zones/{ZONE}/reconciliation/{report_id}", params={"cursor": "x"})
    assert (bad.status_code, bad.json()["violations"][0]["field"]) == (422, "cursor")
    assert stack.get(f"/api/v1/zones/{ZONE}/reconciliation/{report_id}", params={"limit": 1001}).status_code == 422
