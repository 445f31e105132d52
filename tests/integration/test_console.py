"""The web console over plain HTTP: signing in, what a key may see, forms that change nothing when
refused. The browser tests (test_console_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import httpx
import psycopg2
import pytest

from tests.support import (
    REVERSE4_ZONE,
    STALE_ZONE,
    ZONE,
    Process,
    hostmaster,
    make_client,
    unique_label,
    wait_for_terminal,
)

pytestmark = pytest.mark.usefixtures("stack")


OPENED: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_consoles() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def console(api: Process, key: str | None = None) -> httpx.Client:
    """A browser-like client of the console: follows no redirect, keeps cookies; signed in with ``key``."""
    http = httpx.Client(base_url=api.url, timeout=10, follow_redirects=False)
    OPENED.append(http)
    if key is not None:
        answer = http.post("/ui/signin", data={"key": key, "next": "/ui/requests"})
        assert answer.status_code == 303, answer.text
    return http


def form_token(page: str) -> str:
    found = re.search(r'name="form_token" value="([0-9a-f]{64})"', page)
    assert found, "the page carries no form token"
    return found.group(1)


@pytest.fixture(scope="module")
def teams(stack_env: dict[str, str]) -> dict[str, str]:
    """Two clients that are not admins: one granted example.test, one stale.test."""
    return {
        "web": make_client(stack_env, unique_label("web"), ZONE),
        "stale": make_client(stack_env, unique_label("stale"), STALE_ZONE),
    }


def test_a_page_without_a_session_sends_the_browser_to_sign_in(api: Process) -> None:
    answer = console(api).get("/ui/requests", params={"status": "failed"})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/signin?next=%2Fui%2Frequests%3Fstatus%3Dfailed"


def test_a_wrong_key_is_refused_on_the_page_and_sets_no_cookie(api: Process) -> None:
    answer = console(api).post("/ui/signin", data={"key": "hm_000000000000_" + "x" * 43, "next": "/ui/zones"})

    assert answer.status_code == 401
    assert "unknown or revoked" in answer.text
    assert "set-cookie" not in answer.headers


def test_signing_in_keeps_a_session_token_in_the_cookie_never_the_key(
    api: Process, admin_key: str, database_url: str
) -> None:
    http = console(api)
    answer = http.post("/ui/signin", data={"key": admin_key, "next": "/ui/zones"})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/zones"
    cookie = answer.headers["set-cookie"]
    token = http.cookies["hostmaster_console"]
    assert admin_key not in cookie
    assert token != admin_key
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie  # plain HTTP in dev: a browser keeps no Secure cookie here
    assert "Max-Age=28800" in cookie  # HOSTMASTER_CONSOLE_SESSION_MINUTES: 8 h
    page = http.get("/ui/zones")
    assert page.status_code == 200
    assert "example.test." in page.text
    assert admin_key not in page.text
    assert all(admin_key not in line and token not in line for line in api.log_path.read_text().splitlines())
    stored = _sessions(database_url, token)
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]  # only the token's hash is kept


def _sessions(database_url: str, token: str) -> list[str]:
    """The session rows of ``token`` (by its hash), and never the token itself."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    with psycopg2.connect(database_url.replace("+psycopg2", "")) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM console_session WHERE id = %s OR id = %s", (digest, token))
        return [row[0] for row in cursor.fetchall()]


def _replay(api: Process, token: str, name: str = "hostmaster_console", **headers: str) -> httpx.Response:
    """A page asked with a copy of a session cookie, as someone who kept it would."""
    with httpx.Client(base_url=api.url, cookies={name: token}, headers=headers, timeout=10) as http:
        return http.get("/ui/zones")


def test_signing_out_ends_the_session_on_the_server(api: Process, admin_key: str, database_url: str) -> None:
    http = console(api, admin_key)
    token = http.cookies["hostmaster_console"]
    assert _replay(api, token).status_code == 200
    page = http.get("/ui/zones")

    out = http.post("/ui/signout", data={"form_token": form_token(page.text)})

    assert out.status_code == 303
    assert 'hostmaster_console=""' in out.headers["set-cookie"]
    replayed = _replay(api, token)  # a copy of the cookie kept from before: it opens nothing now
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/ui/signin")
    assert _sessions(database_url, token) == []


def test_an_expired_session_and_one_of_a_rotated_key_open_nothing(
    api: Process, stack_env: dict[str, str], database_url: str
) -> None:
    name = unique_label("sess")
    key = make_client(stack_env, name, ZONE)
    first = console(api, key).cookies["hostmaster_console"]
    second = console(api, key).cookies["hostmaster_console"]
    assert _replay(api, first).status_code == _replay(api, second).status_code == 200

    digest = hashlib.sha256(first.encode()).hexdigest()
    with psycopg2.connect(database_url.replace("+psycopg2", "")) as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE console_session SET expires_at = now() - interval '1 second' WHERE id = %s", (digest,))
    assert _replay(api, first).status_code == 303
    assert _replay(api, second).status_code == 200

    rotated = hostmaster(stack_env, "clients", "rotate", name)
    assert rotated.returncode == 0, rotated.stderr
    assert _replay(api, second).status_code == 303  # signed in with the old key: ended with it


def test_over_https_the_cookie_is_a_host_only_secure_one(api: Process, admin_key: str) -> None:
    behind_tls = {"X-Forwarded-Proto": "https"}  # as the TLS proxy in front says (uvicorn trusts 127.0.0.1)
    http = console(api)
    answer = http.post("/ui/signin", data={"key": admin_key, "next": "/ui/zones"}, headers=behind_tls)

    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-hostmaster_console=")
    assert "Secure" in cookie
    assert "Path=/;" in cookie
    assert "Domain" not in cookie
    token = cookie.split(";")[0].partition("=")[2]
    assert _replay(api, token, "__Host-hostmaster_console", **behind_tls).status_code == 200
    assert _replay(api, token, **behind_tls).status_code == 303  # over HTTPS only the __Host- cookie is read


@pytest.mark.parametrize("origin", ["https://elsewhere.example", "null"])
def test_a_sign_in_posted_from_another_site_is_refused(api: Process, admin_key: str, origin: str) -> None:
    answer = console(api).post("/ui/signin", data={"key": admin_key}, headers={"Origin": origin})

    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_a_form_found_without_a_session_comes_back_to_its_page(api: Process) -> None:
    answer = console(api).post(f"/ui/zones/{ZONE}/changes", data={"form_token": "x"})

    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ui/signin?next=%2Fui%2Fzones%2F{ZONE}"


def test_signing_in_goes_back_only_to_a_console_page(api: Process, admin_key: str) -> None:
    for target in ("https://elsewhere.example/", "//elsewhere.example/ui/", "/api/v1/records"):
        answer = console(api).post("/ui/signin", data={"key": admin_key, "next": target})
        assert answer.headers["location"] == "/ui/requests", target


def test_console_pages_allow_only_their_own_scripts_and_styles(api: Process, admin_key: str) -> None:
    answer = console(api, admin_key).get("/ui/requests")

    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "form-action 'self'" in policy
    assert answer.headers["cache-control"] == "no-store"


def test_a_client_sees_its_own_requests_only(api: Process, teams: dict[str, str], client: httpx.Client) -> None:
    mine = _record(api, teams["web"], f"{unique_label('mine')}.{ZONE}")
    theirs = _record(api, teams["stale"], f"{unique_label('theirs')}.{STALE_ZONE}")
    http = console(api, teams["web"])

    listed = http.get("/ui/requests").text
    assert mine[:8] in listed
    assert theirs[:8] not in listed
    assert http.get(f"/ui/requests/{mine}").status_code == 200
    refused = http.get(f"/ui/requests/{theirs}")
    assert refused.status_code == 404
    assert f"no request has the id {theirs}" in refused.text
    zones = http.get("/ui/zones").text
    assert f"{ZONE}." in zones
    assert f"{STALE_ZONE}." not in zones
    assert http.get(f"/ui/zones/{STALE_ZONE}").status_code == 403
    assert client.post(f"/api/v1/zones/{STALE_ZONE}/reconcile").status_code == 202  # a report on stale.test
    health = http.get("/ui/health").text
    assert "Dead-letter queue" not in health  # an admin's view only
    assert f"{STALE_ZONE}." not in health
    assert f"{STALE_ZONE}." in console(api, teams["stale"]).get("/ui/health").text
    assert theirs[:8] not in http.get("/ui/requests", params={"client": _client_of(client, theirs)}).text
    assert console(api, teams["stale"]).get(f"/ui/requests/{theirs}").status_code == 200


def test_a_form_posted_without_its_token_changes_nothing(api: Process, admin_key: str, client: httpx.Client) -> None:
    name = f"{unique_label('csrf')}.{ZONE}"
    http = console(api, admin_key)
    rows = {"op": "upsert", "name": name, "type": "A", "ttl": "", "values": "192.0.2.7", "intent": "apply"}

    answer = http.post(f"/ui/zones/{ZONE}/changes", data={**rows, "form_token": "0" * 64})

    assert answer.status_code == 403
    assert "reload the page" in answer.text
    assert client.get(f"/api/v1/records/{name}/A").status_code == 404
    for token in ("é" * 64, ""):
        assert http.post(f"/ui/zones/{ZONE}/changes", data={**rows, "form_token": token}).status_code == 403
    page = http.get(f"/ui/zones/{ZONE}").text
    foreign = http.post(
        f"/ui/zones/{ZONE}/changes",
        data={**rows, "form_token": form_token(page)},
        headers={"Origin": "https://elsewhere.example"},
    )
    assert foreign.status_code == 403
    assert "another site" in foreign.text
    assert client.get(f"/api/v1/records/{name}/A").status_code == 404


def test_a_dry_run_shows_the_plan_and_changes_nothing(api: Process, admin_key: str, client: httpx.Client) -> None:
    name = f"{unique_label('plan')}.{ZONE}"
    http = console(api, admin_key)
    token = form_token(http.get(f"/ui/zones/{ZONE}").text)
    form = {"form_token": token, "op": "upsert", "name": name, "type": "A", "ttl": "300", "values": "192.0.2.8"}

    answer = http.post(f"/ui/zones/{ZONE}/changes", data={**form, "intent": "plan"})

    assert answer.status_code == 200
    assert "Plan (dry run: nothing changed)" in answer.text
    assert f"{name}." in answer.text
    assert client.get(f"/api/v1/records/{name}/A").status_code == 404

    applied = http.post(f"/ui/zones/{ZONE}/changes", data={**form, "intent": "apply"})
    assert applied.status_code == 303
    request_id = applied.headers["location"].rsplit("/", 1)[1]
    assert wait_for_terminal(client, request_id)["status"] == "succeeded"


def test_a_bad_row_is_named_and_recorded_as_a_rejected_request(
    api: Process, admin_key: str, client: httpx.Client
) -> None:
    http = console(api, admin_key)
    token = form_token(http.get(f"/ui/zones/{ZONE}").text)
    form = {"form_token": token, "intent": "apply", "op": ["upsert", "upsert"], "name": ["", f"bad.{ZONE}"]}
    form |= {"type": ["", "A"], "ttl": ["", ""], "values": ["", "192.0.2.300"]}

    answer = http.post(f"/ui/zones/{ZONE}/changes", data=form)

    assert answer.status_code == 422
    assert "row 2, values[0]: " in answer.text
    assert "192.0.2.300" in answer.text
    request_id = re.search(r'Recorded as request <a href="/ui/requests/([0-9a-f-]{36})"', answer.text)
    assert request_id, answer.text
    tracked = client.get(f"/api/v1/requests/{request_id.group(1)}").json()
    assert tracked["status"] == "rejected"
    assert tracked["operation"] == "changeset"
    assert client.get(f"/api/v1/records/bad.{ZONE}/A").status_code == 404


def test_a_filter_that_cannot_be_read_is_named(api: Process, admin_key: str) -> None:
    answer = console(api, admin_key).get("/ui/requests", params={"since": "yesterday", "status": "lost"})

    assert answer.status_code == 422
    assert "since: " in answer.text
    assert "is not a time" in answer.text
    assert "status: " in answer.text


def test_requests_filter_by_status_zone_and_source(api: Process, admin_key: str, client: httpx.Client) -> None:
    failed = _record(api, admin_key, f"{unique_label('stale')}.{STALE_ZONE}")
    succeeded = _record(api, admin_key, f"{unique_label('fine')}.{ZONE}")
    assert wait_for_terminal(client, failed)["status"] == "failed"
    assert wait_for_terminal(client, succeeded)["status"] == "succeeded"
    http = console(api, admin_key)

    listed = http.get("/ui/requests", params={"status": "failed", "zone": STALE_ZONE, "source": "api"}).text
    assert failed[:8] in listed
    assert succeeded[:8] not in listed
    assert succeeded[:8] not in http.get("/ui/requests", params={"source": "kafka"}).text
    assert failed[:8] not in http.get("/ui/requests", params={"since": "2999-01-01T00:00"}).text


def test_the_zone_filter_finds_change_sets_that_reach_two_zones_and_refused_ones(
    api: Process, admin_key: str, client: httpx.Client
) -> None:
    name = f"{unique_label('ptr')}.{ZONE}"
    change = {"op": "upsert", "name": name, "type": "A", "values": ["192.0.2.77"], "ptr": True}
    both = client.post(f"/api/v2/zones/{ZONE}/changes", json={"changes": [change]}).json()["request_id"]
    refused = client.post(
        f"/api/v2/zones/{ZONE}/changes", json={"changes": [{**change, "values": ["192.0.2.777"]}]}
    ).headers["x-request-id"]
    http = console(api, admin_key)

    in_forward = http.get("/ui/requests", params={"zone": ZONE}).text
    in_reverse = http.get("/ui/requests", params={"zone": REVERSE4_ZONE}).text

    assert both[:8] in in_forward  # its changes are in example.test and in the reverse zone
    assert both[:8] in in_reverse
    assert refused[:8] in in_forward  # refused before planning: found by the zone it was sent to
    assert refused[:8] not in in_reverse


def test_signing_out_forgets_the_key(api: Process, admin_key: str) -> None:
    http = console(api, admin_key)
    token = form_token(http.get("/ui/requests").text)

    answer = http.post("/ui/signout", data={"form_token": token})

    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/signin"
    assert http.get("/ui/requests").status_code == 303


def test_a_ttl_that_is_not_a_number_is_named_and_nothing_is_recorded(
    api: Process, admin_key: str, client: httpx.Client
) -> None:
    http = console(api, admin_key)
    token = form_token(http.get(f"/ui/zones/{ZONE}").text)
    form = {"form_token": token, "intent": "apply", "op": "upsert", "name": f"ttl.{ZONE}", "type": "A"}

    answer = http.post(f"/ui/zones/{ZONE}/changes", data={**form, "ttl": "5m", "values": "192.0.2.9"})

    assert answer.status_code == 422
    assert "row 1, ttl: &#39;5m&#39; is not a number of seconds" in answer.text
    assert "Recorded as request" not in answer.text
    assert client.get(f"/api/v1/requests/{answer.headers['x-request-id']}").status_code == 404  # not tracked


def test_a_bad_query_parameter_is_a_page_not_json(api: Process, admin_key: str) -> None:
    answer = console(api, admin_key).get("/ui/health", params={"redriven": "many"})

    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert "redriven" in answer.text
    assert "Sign out" in answer.text


def _client_of(client: httpx.Client, request_id: str) -> str:
    name: str = client.get(f"/api/v1/requests/{request_id}").json()["client"]
    return name


def _record(api: Process, key: str, name: str) -> str:
    answer = httpx.post(
        f"{api.url}/api/v1/records",
        json={"name": name, "type": "A", "values": ["192.0.2.1"]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    request_id: str = answer.json()["request_id"]
    return request_id
