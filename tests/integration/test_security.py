"""Nobody gets in where they don't belong: keys, scopes, zones, limits, headers, bad input."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.dns_helpers import served, texts
from tests.support import (
    GUARD_ZONE,
    OVERRIDE_ZONE,
    ZONE,
    Bind,
    Process,
    make_client,
    start_api,
    unique_label,
    wait_for_terminal,
    wait_until,
)

pytestmark = pytest.mark.integration

PROTECTED = [
    ("GET", "/api/v1/records"),
    ("POST", "/api/v1/records"),
    ("GET", f"/api/v1/records/www.{ZONE}/A"),
    ("PUT", f"/api/v1/records/www.{ZONE}/A"),
    ("DELETE", f"/api/v1/records/www.{ZONE}/A"),
    ("POST", f"/api/v2/zones/{ZONE}/changes"),
    ("GET", f"/api/v1/requests/{uuid.uuid4()}"),
    ("GET", "/api/v1/zones"),
    ("POST", "/api/v1/zones"),
    ("GET", f"/api/v1/zones/{ZONE}"),
    ("PATCH", f"/api/v1/zones/{ZONE}"),
    ("DELETE", f"/api/v1/zones/{ZONE}"),
    ("GET", "/api/v1/clients"),
    ("POST", "/api/v1/clients"),
    ("POST", "/api/v1/clients/test-admin/rotate"),
    ("DELETE", "/api/v1/clients/test-admin"),
    ("GET", "/api/v1/dlq"),
    ("POST", "/api/v1/dlq/redrive"),
    ("DELETE", "/api/v1/dlq"),
    ("POST", f"/api/v1/zones/{ZONE}/reconcile"),
    ("GET", f"/api/v1/zones/{ZONE}/reconciliation"),
    ("GET", f"/api/v1/zones/{ZONE}/reconciliation/1"),
]


def as_client(api: Process, key: str) -> httpx.Client:
    return httpx.Client(base_url=api.url, timeout=10, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture(scope="module")
def writer(stack: httpx.Client, stack_env: dict[str, str], api: Process) -> Iterator[httpx.Client]:
    """A team that may write in example.test only."""
    with as_client(api, make_client(stack_env, f"team-{unique_label('w')}", ZONE)) as client:
        yield client


@pytest.fixture(scope="module")
def reader(stack: httpx.Client, stack_env: dict[str, str], api: Process) -> Iterator[httpx.Client]:
    """An auditor who may read example.test only."""
    with as_client(api, make_client(stack_env, f"audit-{unique_label('r')}", ZONE, scopes=("read",))) as client:
        yield client


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-key",
        "Bearer hm_0123456789ab_" + "x" * 43,
        "Bearer hm_' OR 1=1 --",
    ],
    ids=["none", "basic", "empty-bearer", "malformed", "unknown", "sql-looking"],
)
def test_every_endpoint_needs_a_valid_key(
    api: Process, stack: httpx.Client, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = httpx.request(method, api.url + path, headers=headers, json={}, timeout=10)

    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_probes_need_no_key(api: Process, stack: httpx.Client) -> None:
    assert httpx.get(f"{api.url}/healthz", timeout=10).status_code == 200
    assert httpx.get(f"{api.url}/readyz", timeout=10).status_code == 200
    assert httpx.get(f"{api.url}/metrics", timeout=10).status_code == 200


def test_a_write_in_a_zone_not_granted_is_a_403_and_changes_nothing(writer: httpx.Client, stack: httpx.Client) -> None:
    name = f"{unique_label('x')}.{OVERRIDE_ZONE}"

    refused = writer.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.1"]})
    changeset = writer.post(
        f"/api/v2/zones/{OVERRIDE_ZONE}/changes",
        json={"changes": [{"op": "create", "name": name, "type": "A", "values": ["192.0.2.1"]}]},
    )
    mixed = writer.post(
        f"/api/v2/zones/{ZONE}/changes",
        json={"changes": [{"op": "create", "name": name, "type": "A", "values": ["192.0.2.1"]}]},
    )

    assert refused.status_code == 403
    assert refused.json()["code"] == "zone_not_granted"
    assert changeset.status_code == 403
    assert mixed.status_code == 403  # the name's zone is not granted: said before anything else
    assert stack.get(f"/api/v1/records/{name}/A").status_code == 404
    tracked = stack.get(f"/api/v1/requests/{refused.json()['request_id']}").json()
    assert tracked["status"] == "rejected"
    assert tracked["error_code"] == "zone_not_granted"


def test_an_automatic_ptr_in_a_reverse_zone_not_granted_is_a_403(writer: httpx.Client, stack: httpx.Client) -> None:
    name = f"{unique_label('p')}.{ZONE}"
    answer = writer.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.77"], "ptr": True})

    assert answer.status_code == 403
    assert "2.0.192.in-addr.arpa." in answer.json()["detail"]
    assert stack.get(f"/api/v1/records/{name}/A").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", f"/api/v1/records/www.{OVERRIDE_ZONE}/A", {"values": ["192.0.2.1"]}),
        ("DELETE", f"/api/v1/records/www.{OVERRIDE_ZONE}/A", None),
        (
            "POST",
            f"/api/v2/zones/{OVERRIDE_ZONE}/changes",
            {
                "dry_run": True,
                "changes": [{"op": "create", "name": f"www.{OVERRIDE_ZONE}", "type": "A", "values": ["192.0.2.1"]}],
            },
        ),
        (
            "POST",
            f"/api/v2/zones/{ZONE}/changes",
            {"changes": [{"op": "create", "name": f"www.{OVERRIDE_ZONE}", "type": "A", "values": ["bad"], "ttl": 1}]},
        ),
        ("GET", f"/api/v1/records/www.{OVERRIDE_ZONE}/A", None),
        ("GET", f"/api/v1/records/never-made.{OVERRIDE_ZONE}/A", None),
        ("GET", f"/api/v1/zones/{OVERRIDE_ZONE}", None),
    ],
    ids=["put", "delete", "dry-run", "bad-ops-in-a-zone-not-granted", "get-existing", "get-absent", "zone"],
)
def test_every_way_into_a_zone_not_granted_is_the_same_403(
    writer: httpx.Client, method: str, path: str, body: Any
) -> None:
    answer = writer.request(method, path, json=body)

    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "zone_not_granted"


def test_a_body_sent_without_a_key_is_refused_before_it_is_read(api: Process, stack: httpx.Client) -> None:
    for path in ("/api/v1/zones", "/api/v1/clients", "/api/v1/records"):
        answer = httpx.post(f"{api.url}{path}", content=b"[" * 50_000, timeout=10)
        assert answer.status_code == 401, (path, answer.text)


def test_odd_client_names_and_a_revoked_client_are_refused_cleanly(stack: httpx.Client, api: Process) -> None:
    assert stack.delete("/api/v1/clients/a%00b").status_code == 404
    trailing = f"team-{unique_label('n')}\n"  # `$` matches before a final newline; the whole name must match
    made = stack.post("/api/v1/clients", json={"name": trailing, "scopes": ["read"], "zones": [ZONE]})
    assert made.status_code == 422, made.text
    assert made.json()["violations"][0]["field"] == "name"
    assert all(client["name"] != trailing for client in stack.get("/api/v1/clients").json())
    assert stack.post("/api/v1/clients/a%00b/rotate").status_code == 404
    name = f"gone-{unique_label('g')}"
    key = stack.post("/api/v1/clients", json={"name": name, "scopes": ["write"], "zones": [ZONE]}).json()["key"]
    assert stack.delete(f"/api/v1/clients/{name}").status_code == 200
    with as_client(api, key) as revoked:
        assert (
            revoked.post(
                "/api/v1/records", json={"name": f"r.{ZONE}", "type": "A", "values": ["192.0.2.1"]}
            ).status_code
            == 401
        )
    assert stack.post(f"/api/v1/clients/{name}/rotate").status_code == 409


def test_a_primary_with_a_zone_index_or_control_characters_is_a_422(stack: httpx.Client) -> None:
    for host in ("fe80::1%eth0", "fe80::1%a\nb", "127.0.0.1 "):
        answer = stack.post("/api/v1/zones", json={"name": "odd.test", "primary_host": host, "tsig_key_name": "k"})
        assert answer.status_code == 422, host


def test_a_writer_works_in_its_zone_and_sees_only_its_own_requests(
    writer: httpx.Client, reader: httpx.Client, stack: httpx.Client, bind: Bind
) -> None:
    name = f"{unique_label('own')}.{ZONE}"
    answer = writer.post("/api/v1/records", json={"name": name, "type": "TXT", "values": ["mine"]})
    assert answer.status_code == 202, answer.text
    request_id = answer.json()["request_id"]
    final = wait_for_terminal(writer, request_id)

    assert final["status"] == "succeeded"
    assert texts(served(bind, name, "TXT")) == ['"mine"']
    client_name = final["client"]
    assert client_name.startswith("team-")
    assert {event["client"] for event in final["events"]} == {client_name}
    assert reader.get(f"/api/v1/requests/{request_id}").status_code == 404
    assert stack.get(f"/api/v1/requests/{request_id}").status_code == 200  # an admin sees all


def test_a_reader_reads_its_zones_and_may_not_write(reader: httpx.Client) -> None:
    listed = reader.get("/api/v1/records", params={"limit": 1000}).json()["items"]
    assert listed
    assert {item["zone"] for item in listed} == {f"{ZONE}."}
    assert reader.get(f"/api/v1/zones/{GUARD_ZONE}").json()["code"] == "zone_not_granted"
    assert [zone["name"] for zone in reader.get("/api/v1/zones").json()] == [f"{ZONE}."]

    write = reader.post("/api/v1/records", json={"name": f"r.{ZONE}", "type": "A", "values": ["192.0.2.1"]})
    assert write.status_code == 403
    assert write.json()["code"] == "scope_missing"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/zones", {"name": "z.test", "primary_host": "127.0.0.1", "tsig_key_name": "k"}),
        ("PATCH", f"/api/v1/zones/{ZONE}", {"max_ttl": 7200}),
        ("DELETE", f"/api/v1/zones/{ZONE}", None),
        ("GET", "/api/v1/clients", None),
        ("POST", "/api/v1/clients", {"name": "sneaky", "scopes": ["admin"], "zones": ["*"]}),
        ("POST", "/api/v1/clients/test-admin/rotate", None),
        ("DELETE", "/api/v1/clients/test-admin", None),
        ("GET", "/api/v1/dlq", None),
        ("POST", "/api/v1/dlq/redrive", {"all": True}),
        ("DELETE", "/api/v1/dlq?confirm=yes", None),
    ],
)
def test_admin_routes_are_refused_to_a_writer(writer: httpx.Client, method: str, path: str, body: Any) -> None:
    answer = writer.request(method, path, json=body)

    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "scope_missing"


def test_a_rotated_key_stops_working_and_a_revoked_client_gets_nothing(stack: httpx.Client, api: Process) -> None:
    name = f"rot-{unique_label('c')}"
    created = stack.post("/api/v1/clients", json={"name": name, "scopes": ["read"], "zones": [ZONE]})
    assert created.status_code == 201, created.text
    first = created.json()["key"]
    assert first.startswith("hm_")
    assert all("key" not in client for client in stack.get("/api/v1/clients").json())

    rotated = stack.post(f"/api/v1/clients/{name}/rotate").json()["key"]

    with as_client(api, first) as old, as_client(api, rotated) as new:
        assert old.get("/api/v1/records").status_code == 401
        assert new.get("/api/v1/records").status_code == 200
        assert stack.delete(f"/api/v1/clients/{name}").json()["revoked_at"]
        revoked = time.monotonic()
        # An API process trusts what it read of a key for HOSTMASTER_AUTH_CACHE_S (1 s; docs/security.md).
        wait_until(lambda: new.get("/api/v1/records").status_code == 401, timeout=3, what="the revocation")
        assert time.monotonic() - revoked < 1.5


def test_a_rotated_key_that_was_in_use_stops_within_a_second(stack: httpx.Client, api: Process) -> None:
    name = f"rot-{unique_label('c')}"
    first = stack.post("/api/v1/clients", json={"name": name, "scopes": ["read"], "zones": [ZONE]}).json()["key"]
    with as_client(api, first) as old:
        assert old.get("/api/v1/records").status_code == 200  # read and kept by the API
        rotated = stack.post(f"/api/v1/clients/{name}/rotate").json()["key"]
        started = time.monotonic()
        wait_until(lambda: old.get("/api/v1/records").status_code == 401, timeout=3, what="the old key to stop")
        assert time.monotonic() - started < 1.5
    with as_client(api, rotated) as new:
        assert new.get("/api/v1/records").status_code == 200


@pytest.mark.parametrize(
    ("name", "field"),
    [
        (f"a\nb.{ZONE}", "name"),
        (f"a\rb.{ZONE}", "name"),
        (f'a"b.{ZONE}', "name"),
        (f"a'b.{ZONE}", "name"),
        (f"a\\b.{ZONE}", "name"),
        (f"a\x00b.{ZONE}", "name"),
        (f"{'a' * 64}.{ZONE}", "name"),
        (f"x'; DROP TABLE rrset; --.{ZONE}", "name"),
        (f"a b.{ZONE}", "name"),
        (f"a;b.{ZONE}", "name"),
    ],
)
def test_injection_in_names_is_rejected(writer: httpx.Client, name: str, field: str) -> None:
    answer = writer.post(
        "/api/v1/records",
        content=_json({"name": name, "type": "A", "values": ["192.0.2.1"]}),
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 422
    assert [violation["field"] for violation in answer.json()["violations"]] == [field]


def test_sql_and_escapes_in_txt_are_stored_and_served_as_text(writer: httpx.Client, bind: Bind) -> None:
    name = f"{unique_label('inj')}.{ZONE}"
    texts_sent = ["x'); DROP TABLE rrset; --", 'quote " backslash \\ end', "semicolon; paren ( ) at @ dollar $"]
    answer = writer.post("/api/v1/records", json={"name": name, "type": "TXT", "values": texts_sent})
    assert answer.status_code == 202, answer.text
    assert wait_for_terminal(writer, answer.json()["request_id"])["status"] == "succeeded"

    rrset = served(bind, name, "TXT")
    assert rrset is not None
    assert sorted(b"".join(rdata.strings).decode() for rdata in rrset) == sorted(texts_sent)
    assert writer.get("/api/v1/records", params={"limit": 1}).status_code == 200  # the table is still there


@pytest.mark.parametrize("value", ["line\nbreak", "nul\x00byte", "bell\x07"])
def test_control_characters_in_txt_are_rejected(writer: httpx.Client, value: str) -> None:
    answer = writer.post(
        "/api/v1/records",
        content=_json({"name": f"c.{ZONE}", "type": "TXT", "values": [value]}),
        headers={"Content-Type": "application/json"},
    )

    assert answer.status_code == 422
    assert answer.json()["violations"][0]["field"] == "values[0]"


def test_a_filter_that_looks_like_sql_is_a_422(writer: httpx.Client) -> None:
    answer = writer.get("/api/v1/records", params={"zone": "x' OR '1'='1"})

    assert answer.status_code == 422


def test_every_answer_has_security_headers_and_no_cors_by_default(api: Process, writer: httpx.Client) -> None:
    for answer in (
        writer.get("/api/v1/records"),
        httpx.get(f"{api.url}/api/v1/records", timeout=10),
        httpx.get(f"{api.url}/healthz", headers={"Origin": "https://evil.example"}, timeout=10),
        writer.get("/api/v1/nothing"),
    ):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert "access-control-allow-origin" not in answer.headers


@pytest.fixture(scope="module")
def strict_api(stack_env: dict[str, str], stack: httpx.Client) -> Iterator[Process]:
    """An API as prod runs it: no docs, a tight rate limit, CORS for one origin."""
    env = {
        **stack_env,
        "HOSTMASTER_RATE_LIMIT_PER_S": "0.5",
        "HOSTMASTER_RATE_LIMIT_BURST": "3",
        "HOSTMASTER_DOCS_ENABLED": "false",
        "HOSTMASTER_CORS_ORIGINS": '["https://console.example"]',
        "HOSTMASTER_MAX_VALUES": "2",
        "HOSTMASTER_MAX_CHANGES": "3",
        "HOSTMASTER_MAX_BODY_BYTES": "2048",
    }
    process = start_api("api-strict", env)
    yield process
    process.stop()


def test_a_client_over_its_rate_is_told_when_to_come_back(
    strict_api: Process, stack_env: dict[str, str], admin_key: str
) -> None:
    key = make_client(stack_env, f"busy-{unique_label('b')}", ZONE, scopes=("read",))
    with as_client(strict_api, key) as busy, as_client(strict_api, admin_key) as other:
        answers = [busy.get("/api/v1/records").status_code for _ in range(5)]
        assert answers[:3] == [200, 200, 200]
        limited = busy.get("/api/v1/records")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["code"] == "rate_limited"
        assert other.get("/api/v1/records").status_code == 200  # one client's limit is its own


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (
            "/api/v1/records",
            {"name": f"v.{ZONE}", "type": "A", "values": ["192.0.2.1", "192.0.2.2", "192.0.2.3"]},
            422,
            "values",
        ),
        (
            f"/api/v2/zones/{ZONE}/changes",
            {"changes": [{"op": "delete", "name": f"d{index}.{ZONE}", "type": "A"} for index in range(4)]},
            422,
            "changes",
        ),
        ("/api/v1/records", {"name": f"b.{ZONE}", "type": "TXT", "values": ["x" * 3000]}, 413, None),
    ],
    ids=["values-per-rrset", "changes-per-set", "body-size"],
)
def test_the_limits_are_settings(
    strict_api: Process, stack_env: dict[str, str], path: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    key = make_client(stack_env, f"lim-{unique_label('l')}", ZONE)
    with as_client(strict_api, key) as client:
        answer = client.post(path, json=body)

    assert answer.status_code == status, answer.text
    if field is not None:
        assert [violation["field"] for violation in answer.json()["violations"]] == [field]


def test_docs_can_be_turned_off_and_cors_allows_only_the_configured_origin(strict_api: Process) -> None:
    assert httpx.get(f"{strict_api.url}/docs", timeout=10).status_code == 404
    assert httpx.get(f"{strict_api.url}/openapi.json", timeout=10).status_code == 404
    allowed = httpx.options(
        f"{strict_api.url}/api/v1/records",
        headers={"Origin": "https://console.example", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    refused = httpx.options(
        f"{strict_api.url}/api/v1/records",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert allowed.headers["access-control-allow-origin"] == "https://console.example"
    assert "access-control-allow-origin" not in refused.headers


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()


def test_a_delegate_acts_only_for_a_named_client_with_that_client_s_rights(
    stack: httpx.Client, stack_env: dict[str, str], api: Process
) -> None:
    team = f"team-{unique_label('d')}"
    make_client(stack_env, team, ZONE)
    other = f"team-{unique_label('o')}"
    make_client(stack_env, other, ZONE)
    delegate_key = make_client(stack_env, f"gateway-{unique_label('g')}", scopes=("delegate",))
    name = f"{unique_label('for')}.{ZONE}"
    body = {"name": name, "type": "TXT", "values": ["acted for"]}
    with as_client(api, delegate_key) as delegate:
        alone = delegate.post("/api/v1/records", json=body)  # by itself it may do nothing
        read_alone = delegate.get("/api/v1/records", params={"zone": ZONE})
        for_team = delegate.post(
            "/api/v1/records", json=body, headers={"X-On-Behalf-Of": team, "Idempotency-Key": "e-1"}
        )
        # The same key for another client is another client's request: keys are per acting client.
        for_other = delegate.post(
            "/api/v1/records",
            json={**body, "name": f"o.{name}"},
            headers={"X-On-Behalf-Of": other, "Idempotency-Key": "e-1"},
        )
        outside = delegate.post(
            "/api/v1/records",
            json={**body, "name": f"x.{unique_label('no')}.{OVERRIDE_ZONE}"},
            headers={"X-On-Behalf-Of": team},
        )
        nobody = delegate.post("/api/v1/records", json=body, headers={"X-On-Behalf-Of": "no-such-team"})
        theirs = delegate.get(f"/api/v1/requests/{for_team.json()['request_id']}", headers={"X-On-Behalf-Of": other})
    with as_client(api, make_client(stack_env, f"team-{unique_label('n')}", ZONE)) as plain:
        not_a_delegate = plain.post("/api/v1/records", json=body, headers={"X-On-Behalf-Of": team})

    assert (alone.status_code, alone.json()["code"]) == (403, "scope_missing")
    assert (read_alone.status_code, read_alone.json()["code"]) == (403, "scope_missing")
    assert for_team.status_code == 202, for_team.text
    assert for_other.status_code == 202, for_other.text
    assert for_other.json()["request_id"] != for_team.json()["request_id"]
    assert (outside.status_code, outside.json()["code"]) == (403, "zone_not_granted")  # the team's grants, not more
    assert (nobody.status_code, nobody.json()["code"]) == (403, "client_not_found")
    assert theirs.status_code == 404  # another client's request, as that client would see it
    assert (not_a_delegate.status_code, not_a_delegate.json()["code"]) == (403, "scope_missing")
    final = wait_for_terminal(stack, for_team.json()["request_id"])
    assert final["status"] == "succeeded"
    assert final["client"] == team
    assert {event["client"] for event in final["events"]} == {team}
