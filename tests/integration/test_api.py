"""What a client sees when it sends something wrong: a clear 4xx, and nothing changed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support import ZONE, unique_label

pytestmark = pytest.mark.integration


def problem_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["detail"]
    assert body["request_id"] == answer.headers["x-request-id"]
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return [violation["field"] for violation in body["violations"]]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "a..example.test", "type": "A", "values": ["192.0.2.1"]}, ["name"]),
        ({"name": f"{'x' * 64}.{ZONE}", "type": "A", "values": ["192.0.2.1"]}, ["name"]),
        ({"name": f"_srv.{ZONE}", "type": "A", "values": ["192.0.2.1"]}, ["name"]),
        ({"name": f"ok.{ZONE}", "type": "HINFO", "values": ["PC Linux"]}, ["type"]),
        ({"name": f"ok.{ZONE}", "type": "MX", "values": ["10 nowhere.example.test."]}, ["values"]),
        ({"name": f"ok.{ZONE}", "type": "A", "values": ["192.0.2.300", "::1"]}, ["values[0]", "values[1]"]),
        ({"name": f"ok.{ZONE}", "type": "A", "values": []}, ["values"]),
        ({"name": f"ok.{ZONE}", "type": "A", "values": ["192.0.2.1"], "ttl": 5}, ["ttl"]),
        ({"name": f"ok.{ZONE}", "type": "A", "values": ["192.0.2.1"], "ttl": -1}, ["ttl"]),
        ({"name": f"ok.{ZONE}", "type": "CNAME", "values": ["a.example.test", "b.example.test"]}, ["values"]),
        ({"name": ZONE, "type": "CNAME", "values": ["elsewhere.example.net"]}, ["type"]),
        ({"name": f"ok.{ZONE}", "type": "TXT", "values": ["bell\x07"]}, ["values[0]"]),
        ({"name": f"ok.{ZONE}", "type": "TXT", "values": ['"unbalanced']}, ["values[0]"]),
        ({"name": "www.not-registered.example", "type": "A", "values": ["192.0.2.1"]}, ["name"]),
        ({"name": f"nul\x00.{ZONE}", "type": "A", "values": ["192.0.2.1"]}, ["name"]),
        ({"type": "A", "values": "192.0.2.1"}, ["name", "values"]),
        ({"name": f"ok.{ZONE}", "type": "A", "values": ["192.0.2.1"], "colour": "red"}, ["colour"]),
        ({"name": f"ok.{ZONE}", "type": "A", "values": ["192.0.2.1"], "ttl": 10**30}, ["ttl"]),
        ({"name": f"ok.{ZONE}", "type": "A", "values": ["192.0.2.1"], "ttl": 1.5}, ["ttl"]),
        ({"name": "x" * 100_000, "type": "A", "values": ["192.0.2.1"]}, ["name"]),
        ({"name": f"ok.{ZONE}", "type": "A", "values": [{"nested": ["deep"]}]}, ["values[0]"]),
        ({"name": f"ok.{ZONE}", "type": "A", "values": ["192.0.2.1"] * 101}, ["values"]),
    ],
)
def test_bad_records_are_rejected_with_every_violation_named(
    stack: httpx.Client, body: dict[str, Any], fields: list[str]
) -> None:
    answer = stack.post("/api/v1/records", json=body)

    problem = problem_of(answer, 422)
    assert fields_of(problem) == fields
    assert all(violation["message"] for violation in problem["violations"])


def test_a_rejected_request_is_tracked_and_changes_nothing(stack: httpx.Client) -> None:
    name = f"{unique_label('rej')}.{ZONE}"
    request_id = str(uuid.uuid4())
    before = stack.get("/api/v1/records").json()["items"]

    answer = stack.post(
        "/api/v1/records", json={"name": name, "type": "A", "values": ["nope"]}, headers={"X-Request-ID": request_id}
    )

    problem_of(answer, 422)
    tracked = stack.get(f"/api/v1/requests/{request_id}").json()
    assert tracked["status"] == "rejected"
    assert tracked["error_code"] == "invalid"
    assert [event["step"] for event in tracked["events"]] == ["received", "rejected"]
    assert tracked["events"][1]["detail"]["violations"][0]["field"] == "values[0]"
    assert stack.get("/api/v1/records").json()["items"] == before


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[1, 2]",
        b'"a string"',
        b'{"name": "ok.example.test", "type": "A", "values": ["192.0.2.1"], "ttl": NaN}',
        b'{"name": "ok.example.test", "type": "A", "values": ["192.0.2.1"], "ttl": Infinity}',
        b'{"name": "ok.example.test", "type": "A", "values": ["192.0.2.1"], "ttl": 1e999}',
        b"\xff\xfe not utf-8",
        b'{"a": ' * 100 + b"1" + b"}" * 100,
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=["empty", "not-json", "array", "string", "nan", "infinity", "1e999", "not-utf8", "nested-100", "nested-5000"],
)
def test_a_body_that_is_not_a_record_object_is_a_422_and_is_tracked(stack: httpx.Client, content: bytes) -> None:
    request_id = str(uuid.uuid4())
    answer = stack.post(
        "/api/v1/records", content=content, headers={"Content-Type": "application/json", "X-Request-ID": request_id}
    )

    problem_of(answer, 422)
    tracked = stack.get(f"/api/v1/requests/{request_id}").json()
    assert tracked["status"] == "rejected"
    assert [event["step"] for event in tracked["events"]] == ["received", "rejected"]


def test_a_lone_surrogate_in_a_txt_value_is_a_422_naming_it(stack: httpx.Client) -> None:
    content = b'{"name": "ok.example.test", "type": "TXT", "values": ["lone \\ud800 surrogate"]}'

    answer = stack.post("/api/v1/records", content=content, headers={"Content-Type": "application/json"})

    assert fields_of(problem_of(answer, 422)) == ["values[0]"]


def test_a_body_over_the_size_limit_is_a_413(stack: httpx.Client) -> None:
    huge = b'{"name": "' + b"a" * 5_000_000 + b'"}'

    problem = problem_of(stack.post("/api/v1/records", content=huge), 413)

    assert problem["code"] == "payload_too_large"


def test_zone_ttls_beyond_32_bits_are_a_422(stack: httpx.Client) -> None:
    answer = stack.post(
        "/api/v1/zones",
        json={"name": "big.test", "primary_host": "127.0.0.1", "tsig_key_name": "k", "max_ttl": 10**12},
    )

    assert fields_of(problem_of(answer, 422)) == ["max_ttl"]


def test_an_existing_rrset_is_a_409_naming_it(stack: httpx.Client) -> None:
    name = f"{unique_label('dup')}.{ZONE}"
    body = {"name": name, "type": "A", "values": ["192.0.2.1"]}
    assert stack.post("/api/v1/records", json=body).status_code == 202

    problem = problem_of(stack.post("/api/v1/records", json=body), 409)

    assert problem["code"] == "rrset_exists"
    assert f"{name}. A" in problem["detail"]


def test_a_cname_beside_other_data_is_a_409(stack: httpx.Client) -> None:
    name = f"{unique_label('cn')}.{ZONE}"
    assert stack.post("/api/v1/records", json={"name": name, "type": "TXT", "values": ["x"]}).status_code == 202

    problem = problem_of(stack.post("/api/v1/records", json={"name": name, "type": "CNAME", "values": [ZONE]}), 409)

    assert problem["code"] == "cname_conflict"


def test_an_unknown_request_id_is_a_404(stack: httpx.Client) -> None:
    problem_of(stack.get(f"/api/v1/requests/{uuid.uuid4()}"), 404)
    problem_of(stack.get("/api/v1/requests/not-a-uuid"), 404)


def test_a_reused_request_id_is_a_409(stack: httpx.Client) -> None:
    request_id = str(uuid.uuid4())
    body = {"name": f"{unique_label('reuse')}.{ZONE}", "type": "A", "values": ["192.0.2.1"]}
    assert stack.post("/api/v1/records", json=body, headers={"X-Request-ID": request_id}).status_code == 202

    problem = problem_of(stack.post("/api/v1/records", json=body, headers={"X-Request-ID": request_id}), 409)

    assert problem["code"] == "request_id_in_use"


def test_a_request_id_that_is_not_a_uuid_is_replaced(stack: httpx.Client) -> None:
    answer = stack.get("/healthz", headers={"X-Request-ID": "hello\tworld"})

    assert answer.status_code == 200
    assert str(uuid.UUID(answer.headers["x-request-id"])) == answer.headers["x-request-id"]


def test_unknown_routes_and_methods_answer_problem_json(stack: httpx.Client) -> None:
    problem_of(stack.get("/api/v1/nothing-here"), 404)
    problem_of(stack.delete("/api/v1/records"), 405)


def test_health_and_readiness(stack: httpx.Client) -> None:
    assert stack.get("/healthz").json() == {"status": "ok"}
    ready = stack.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_a_zone_with_bad_fields_is_rejected_and_a_duplicate_is_a_409(stack: httpx.Client) -> None:
    bad = stack.post(
        "/api/v1/zones",
        json={"name": "bad..zone", "primary_host": "not a host", "tsig_key_name": "k", "tsig_algorithm": "md5"},
    )
    assert sorted(fields_of(problem_of(bad, 422))) == ["name", "primary_host", "tsig_algorithm"]

    duplicate = stack.post(
        "/api/v1/zones", json={"name": ZONE.upper(), "primary_host": "127.0.0.1", "tsig_key_name": "k"}
    )
    assert problem_of(duplicate, 409)["code"] == "zone_exists"


def test_zones_never_show_a_secret(stack: httpx.Client) -> None:
    zones = stack.get("/api/v1/zones").json()
    assert {zone["name"] for zone in zones} >= {f"{ZONE}."}
    assert all("secret" not in key for zone in zones for key in zone)
