"""Quotas: a client may create so many RRsets and make so many changes a day, and is told so clearly."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.dns_helpers import served
from tests.support import ZONE, Bind, Process, hostmaster, start_api, unique_label, wait_for_terminal

pytestmark = pytest.mark.integration


def _team(stack: httpx.Client, api: Process, **quotas: int | None) -> tuple[str, httpx.Client]:
    """A new client made by an admin over the API, with the quotas given; its name and an HTTP client."""
    name = f"quota-{unique_label('q')}"
    made = stack.post("/api/v1/clients", json={"name": name, "scopes": ["write"], "zones": [ZONE], **quotas})
    assert made.status_code == 201, made.text
    assert {field: made.json()[field] for field in quotas} == quotas
    http = httpx.Client(base_url=api.url, timeout=30, headers={"Authorization": f"Bearer {made.json()['key']}"})
    return name, http


def _txt(label: str) -> dict[str, Any]:
    return {"name": f"{label}.{ZONE}", "type": "TXT", "values": [label]}


@pytest.fixture
def team(stack: httpx.Client, api: Process) -> Iterator[tuple[str, httpx.Client]]:
    name, http = _team(stack, api, max_rrsets=3)
    with http:
        yield name, http


def test_a_client_at_its_rrset_quota_is_refused_a_new_one_and_nothing_changes(
    stack: httpx.Client, team: tuple[str, httpx.Client], bind: Bind
) -> None:
    name, http = team
    label = unique_label("rr")
    two = http.post(
        f"/api/v2/zones/{ZONE}/changes",
        json={"changes": [{"op": "create", **_txt(f"a.{label}")}, {"op": "create", **_txt(f"b.{label}")}]},
    )
    third = http.post("/api/v1/records", json=_txt(f"c.{label}"))
    assert two.status_code == third.status_code == 202, (two.text, third.text)
    dry = http.post(
        f"/api/v2/zones/{ZONE}/changes", json={"changes": [{"op": "create", **_txt(f"d.{label}")}], "dry_run": True}
    )
    fourth = http.post("/api/v1/records", json=_txt(f"d.{label}"))

    assert (dry.status_code, dry.json()["code"]) == (403, "quota_exceeded")
    assert (fourth.status_code, fourth.json()["code"]) == (403, "quota_exceeded")
    assert "may have 3 RRsets and has 3; this write adds 1" in fourth.json()["detail"]
    refused = wait_for_terminal(stack, fourth.json()["request_id"])
    assert (refused["status"], refused["error_code"]) == ("rejected", "quota_exceeded")
    assert stack.get(f"/api/v1/records/d.{label}.{ZONE}/TXT").status_code == 404
    for accepted in (two, third):
        assert wait_for_terminal(stack, accepted.json()["request_id"])["status"] == "succeeded"
    assert served(bind, f"c.{label}.{ZONE}", "TXT") is not None
    assert served(bind, f"d.{label}.{ZONE}", "TXT") is None
    shown = stack.get(f"/api/v1/clients/{name}").json()["quota"]
    assert shown["rrsets"] == {"limit": 3, "used": 3}

    # At the limit it may still replace what it has, and a delete frees a place for a new one.
    replaced = http.put(f"/api/v1/records/a.{label}.{ZONE}/TXT", json={"values": ["again"]})
    deleted = http.delete(f"/api/v1/records/b.{label}.{ZONE}/TXT")
    assert replaced.status_code == deleted.status_code == 202, (replaced.text, deleted.text)
    again = http.post("/api/v1/records", json=_txt(f"d.{label}"))
    assert again.status_code == 202, again.text
    assert wait_for_terminal(stack, again.json()["request_id"])["status"] == "succeeded"
    assert served(bind, f"d.{label}.{ZONE}", "TXT") is not None


def test_an_admin_sets_a_client_s_quotas_and_lowering_one_never_stops_a_clean_up(
    stack: httpx.Client, team: tuple[str, httpx.Client]
) -> None:
    name, http = team
    label = unique_label("lw")
    for part in ("a", "b"):
        assert http.post("/api/v1/records", json=_txt(f"{part}.{label}")).status_code == 202

    lowered = stack.patch(f"/api/v1/clients/{name}", json={"max_rrsets": 1})
    assert lowered.status_code == 200, lowered.text
    assert lowered.json()["max_rrsets"] == 1
    assert lowered.json()["quota"]["rrsets"] == {"limit": 1, "used": 2}
    time.sleep(1.2)  # a change of quotas is seen within the key cache's window (HOSTMASTER_AUTH_CACHE_S: 1 s)
    refused = http.post("/api/v1/records", json=_txt(f"c.{label}"))
    assert (refused.status_code, refused.json()["code"]) == (403, "quota_exceeded")
    # Over the limit, a change set that deletes more of its own than it creates passes.
    swap = http.post(
        f"/api/v2/zones/{ZONE}/changes",
        json={
            "changes": [
                {"op": "delete", "name": f"a.{label}.{ZONE}", "type": "TXT"},
                {"op": "delete", "name": f"b.{label}.{ZONE}", "type": "TXT"},
                {"op": "create", **_txt(f"c.{label}")},
            ]
        },
    )
    assert swap.status_code == 202, swap.text

    back = stack.patch(f"/api/v1/clients/{name}", json={"max_rrsets": None})
    assert back.status_code == 200, back.text
    assert back.json()["max_rrsets"] is None
    assert back.json()["quota"]["rrsets"]["limit"] == 20_000  # the service's default again


def test_changes_a_day_are_counted_and_the_refusal_says_when_they_start_again(
    stack: httpx.Client, api: Process
) -> None:
    name, http = _team(stack, api, max_changes_per_day=3)
    label = unique_label("cd")
    with http:
        two = http.post(
            f"/api/v2/zones/{ZONE}/changes",
            json={"changes": [{"op": "create", **_txt(f"a.{label}")}, {"op": "create", **_txt(f"b.{label}")}]},
        )
        too_many = http.post(
            f"/api/v2/zones/{ZONE}/changes",
            json={"changes": [{"op": "create", **_txt(f"c.{label}")}, {"op": "create", **_txt(f"d.{label}")}]},
        )
        last = http.post("/api/v1/records", json=_txt(f"c.{label}"))
        after = http.delete(f"/api/v1/records/a.{label}.{ZONE}/TXT")

    assert two.status_code == 202, two.text
    assert (too_many.status_code, too_many.json()["code"]) == (403, "quota_exceeded")
    assert "may make 3 changes a day and has made 2 today; this write holds 2" in too_many.json()["detail"]
    assert 1 <= int(too_many.headers["retry-after"]) <= 86_401  # until 00:00 UTC
    assert last.status_code == 202, last.text  # the refused write counted nothing
    assert (after.status_code, after.json()["code"]) == (403, "quota_exceeded")  # a delete is a change too
    shown = stack.get(f"/api/v1/clients/{name}").json()["quota"]
    assert shown["changes_per_day"] == {"limit": 3, "used": 3}
    assert shown["resets_at"].endswith("T00:00:00Z")


def test_concurrent_writes_cannot_both_take_the_last_place(stack: httpx.Client, api: Process) -> None:
    name, http = _team(stack, api, max_rrsets=5)
    label = unique_label("cc")
    with http, concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda index: http.post("/api/v1/records", json=_txt(f"h{index}.{label}")), range(20)))

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [202] * 5 + [403] * 15, [answer.text for answer in answers if answer.status_code not in (202, 403)]
    assert {answer.json()["code"] for answer in answers if answer.status_code == 403} == {"quota_exceeded"}
    assert stack.get(f"/api/v1/clients/{name}").json()["quota"]["rrsets"]["used"] == 5


def test_a_client_s_quota_is_checked_as_it_is_created_and_refused_when_it_is_not_a_number(
    stack: httpx.Client, team: tuple[str, httpx.Client]
) -> None:
    name, _ = team
    negative = stack.patch(f"/api/v1/clients/{name}", json={"max_rrsets": -1})
    unknown = stack.patch(f"/api/v1/clients/{name}", json={"max_zones": 3})
    nobody = stack.patch("/api/v1/clients/no-such-client", json={"max_rrsets": 3})
    made = stack.post(
        "/api/v1/clients", json={"name": unique_label("q"), "scopes": ["read"], "max_changes_per_day": "many"}
    )

    assert (negative.status_code, negative.json()["violations"][0]["field"]) == (422, "max_rrsets")
    assert (unknown.status_code, unknown.json()["violations"][0]["field"]) == (422, "max_zones")
    assert (nobody.status_code, nobody.json()["code"]) == (404, "client_not_found")
    assert (made.status_code, made.json()["violations"][0]["field"]) == (422, "max_changes_per_day")
    assert stack.get(f"/api/v1/clients/{name}").json()["max_rrsets"] == 3  # unchanged


def test_only_an_admin_reads_or_sets_quotas(stack: httpx.Client, team: tuple[str, httpx.Client]) -> None:
    name, http = team
    assert http.get(f"/api/v1/clients/{name}").status_code == 403
    raised = http.patch(f"/api/v1/clients/{name}", json={"max_rrsets": 1_000_000})
    assert (raised.status_code, raised.json()["code"]) == (403, "scope_missing")
    assert stack.get(f"/api/v1/clients/{name}").json()["max_rrsets"] == 3


def test_the_cli_sets_and_shows_quotas(stack_env: dict[str, str], stack: httpx.Client) -> None:
    name = f"quota-{unique_label('cli')}"
    made = hostmaster(stack_env, "clients", "create", name, "--scope", "write", "--zone", ZONE, "--max-rrsets", "7")
    assert made.returncode == 0, made.stderr
    shown = hostmaster(stack_env, "clients", "quota", name, "--max-changes-per-day", "50")
    wrong = hostmaster(stack_env, "clients", "quota", name, "--max-rrsets", "-3")
    back = hostmaster(stack_env, "clients", "quota", name, "--max-rrsets", "default")

    assert shown.returncode == 0, shown.stderr
    assert "RRsets:          0 of 7\n" in shown.stdout
    assert "changes today:   0 of 50 " in shown.stdout
    assert wrong.returncode == 2
    assert "give a number of 0 or more, or default" in wrong.stderr
    assert back.returncode == 0, back.stderr
    assert "0 of 20000 (the default)" in back.stdout
    assert stack.get(f"/api/v1/clients/{name}").json()["max_changes_per_day"] == 50


@pytest.fixture(scope="module")
def tight_api(stack_env: dict[str, str], stack: httpx.Client) -> Iterator[Process]:
    """An API whose default quotas are tight: two RRsets a client."""
    process = start_api("api-quota", {**stack_env, "HOSTMASTER_QUOTA_RRSETS": "2"})
    yield process
    process.stop()


def test_the_default_quota_is_a_setting_and_an_admin_has_none(
    tight_api: Process, stack: httpx.Client, admin_key: str
) -> None:
    name = f"quota-{unique_label('d')}"
    made = stack.post("/api/v1/clients", json={"name": name, "scopes": ["write"], "zones": [ZONE]})
    label = unique_label("df")
    headers = {"Authorization": f"Bearer {made.json()['key']}"}
    with httpx.Client(base_url=tight_api.url, timeout=30, headers=headers) as http:
        answers = [http.post("/api/v1/records", json=_txt(f"{index}.{label}")) for index in range(3)]
    with httpx.Client(base_url=tight_api.url, timeout=30, headers={"Authorization": f"Bearer {admin_key}"}) as admin:
        mine = [admin.post("/api/v1/records", json=_txt(f"admin{index}.{label}")) for index in range(3)]
        shown = admin.get(f"/api/v1/clients/{name}").json()["quota"]["rrsets"]

    assert [answer.status_code for answer in answers] == [202, 202, 403]
    assert answers[2].json()["code"] == "quota_exceeded"
    assert [answer.status_code for answer in mine] == [202, 202, 202]
    assert shown == {"limit": 2, "used": 2}


def test_a_batch_stops_exactly_at_the_quota_and_says_so_for_each_write_past_it(
    stack: httpx.Client, api: Process
) -> None:
    name, http = _team(stack, api, max_rrsets=3)
    label = unique_label("bt")
    writes = [{"operation": "record.create", "body": _txt(f"{index}.{label}")} for index in range(5)]
    with http:
        answer = http.post("/api/v2/requests:batch", json={"writes": writes})

    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [result["status"] for result in results] == [202, 202, 202, 403, 403]
    assert {result["body"]["code"] for result in results[3:]} == {"quota_exceeded"}
    assert stack.get(f"/api/v1/clients/{name}").json()["quota"]["rrsets"] == {"limit": 3, "used": 3}
