"""Statement budgets of the API's write path: what one write asks of PostgreSQL.

The API runs in this process (the same app as `python -m service`, against the tests' real
PostgreSQL and RabbitMQ) so SQLAlchemy's events count every statement and commit it sends.
Counts are deterministic; a change that adds a round trip to a write fails here. The budgets
are written down in docs/performance.md.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from db.models import CREATED_AND_EXISTING
from service.api import health
from service.app import create_app
from service.core.settings import Settings, load_settings
from service.dns import rdata
from service.planning import changes
from tests.sqlcount import Count, counted
from tests.support import BULK_ZONE, ZONE, free_port, make_client, unique_label, wait_until

pytestmark = pytest.mark.integration

# Per write: (statements, COMMITs). The early tracker row is one autocommitted statement (the
# request row and its `received` event together: no BEGIN, no COMMIT); planning reads what the
# rules need (zones, the RRsets of the names consulted; a delete also what points at the name)
# and writes the RRsets, their changes, the status and the events in one transaction.
BUDGET = {
    "create": (6, 1),
    "replace": (7, 1),  # + the row lock of the stored RRset
    "delete": (7, 1),  # as replace (of a TXT; an A's delete also reads what points at the name)
}
CHANGESET_100 = (8, 1)  # 100 new RRsets: one INSERT of them all, one of their changes, + the zone's RRset count
# A batch of N keyed single-record creates: which keys were used before, the N tracker rows and
# their `received` events (one autocommitted statement), the zones; then per write its SAVEPOINT,
# the RRsets of the names consulted, its RRset, its change, status + events, RELEASE; one COMMIT.
BATCH_FIXED, BATCH_PER_WRITE = 3, 6


class InProcessApi:
    """The API served by uvicorn on a thread of this process, so its engine can be watched."""

    def __init__(self, http: httpx.Client, engine: Engine) -> None:
        self.http = http
        self.engine = engine


@pytest.fixture(scope="module")
def api_here(
    stack_env: dict[str, str], zones: dict[str, str], admin_key: str, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[InProcessApi]:
    for name, value in stack_env.items():
        if name.startswith("HOSTMASTER_") or name == "APP_ENV":
            monkeypatch_module.setenv(name, value)
    monkeypatch_module.setenv("HOSTMASTER_AUTH_CACHE_S", "60")  # the key stays "seen within the window"
    app = create_app(load_settings())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30, what="the in-process API to start")
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as http:
        yield InProcessApi(http, app.state.engine)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _counted(api: InProcessApi, method: str, url: str, status: int = 202, **kwargs: Any) -> Count:
    api.http.get("/api/v1/records", params={"limit": 1})  # the key is seen: authenticated from the cache
    with counted(api.engine) as count:
        answer = api.http.request(method, url, **kwargs)
    assert answer.status_code == status, answer.text
    return count


def _name() -> str:
    return f"{unique_label('budget')}.{BULK_ZONE}."  # not example.test: the console's tests page its RRsets


def test_a_v1_create_stays_within_its_budget(api_here: InProcessApi) -> None:
    count = _counted(api_here, "POST", "/api/v1/records", json={"name": _name(), "type": "A", "values": ["192.0.2.7"]})
    assert (len(count.statements), count.commits) <= BUDGET["create"], str(count)


def test_a_v1_replace_stays_within_its_budget(api_here: InProcessApi) -> None:
    name = _name()
    first = api_here.http.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.7"]})
    assert first.status_code == 202, first.text
    count = _counted(api_here, "PUT", f"/api/v1/records/{name}/A", json={"values": ["192.0.2.8"]})
    assert (len(count.statements), count.commits) <= BUDGET["replace"], str(count)


def test_a_v1_delete_stays_within_its_budget(api_here: InProcessApi) -> None:
    # A TXT: deleting it cannot leave the name without an address, so the rules read nothing more
    # (deleting an A also reads what points at the name, which depends on the zone's contents).
    name = _name()
    first = api_here.http.post("/api/v1/records", json={"name": name, "type": "TXT", "values": ["v=1"]})
    assert first.status_code == 202, first.text
    count = _counted(api_here, "DELETE", f"/api/v1/records/{name}/TXT")
    assert (len(count.statements), count.commits) <= BUDGET["delete"], str(count)


def test_a_change_set_of_100_costs_no_more_than_one_of_one(api_here: InProcessApi) -> None:
    label = unique_label("set")
    body = {
        "changes": [
            {"op": "create", "name": f"h{index}.{label}.{BULK_ZONE}.", "type": "A", "values": [f"192.0.2.{index + 1}"]}
            for index in range(100)
        ]
    }
    count = _counted(api_here, "POST", f"/api/v2/zones/{BULK_ZONE}./changes", json=body)
    assert (len(count.statements), count.commits) <= CHANGESET_100, str(count)


def test_a_batch_of_50_writes_commits_once(api_here: InProcessApi) -> None:
    label = unique_label("batch")
    writes = [
        {
            "operation": "record.create",
            "idempotency_key": f"{label}-{index}",
            "body": {"name": f"h{index}.{label}.{BULK_ZONE}.", "type": "A", "values": ["192.0.2.9"]},
        }
        for index in range(50)
    ]
    count = _counted(api_here, "POST", "/api/v2/requests:batch", status=200, json={"writes": writes})
    assert (len(count.statements), count.commits) <= (BATCH_FIXED + 50 * BATCH_PER_WRITE, 1), str(count)


def test_a_scrape_counts_open_requests_and_reads_no_report_whole(api_here: InProcessApi) -> None:
    assert api_here.http.get("/metrics").status_code == 200  # the ended requests counted, kept a minute
    with counted(api_here.engine) as count:
        answer = api_here.http.get("/metrics")

    assert answer.status_code == 200
    assert 'hostmaster_requests{status="succeeded"}' in answer.text
    assert len(count.statements) <= 3, str(count)  # the latest reports twice (read, finished), the open requests
    assert not any("differences" in sql for sql in count.statements), str(count)
    (requests,) = [sql for sql in count.statements if "FROM request" in sql]
    assert "WHERE request.status IN" in requests, requests  # through the index, not every row


def test_readiness_probes_within_a_second_share_one_check(
    api_here: InProcessApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[float] = []
    check = health._broker_answers

    def counting(settings: Settings) -> str:
        checked.append(time.monotonic())
        return check(settings)

    monkeypatch.setattr(health, "_broker_answers", counting)
    started = time.monotonic()
    for _ in range(30):
        assert api_here.http.get("/readyz").status_code == 200
    took = time.monotonic() - started

    assert 1 <= len(checked) <= 2 + int(took), (len(checked), took)  # a broker connection a second, not a probe


def test_automatic_ptrs_are_read_in_one_query_however_many_addresses(api_here: InProcessApi) -> None:
    def rrset_reads(addresses: int) -> int:
        # Addresses of this test's own in 2001:db8::/32 (the IPv4 reverse zone's are other tests'):
        block = random.randrange(0x1000, 0xFFFF)
        values = [f"2001:db8:{block:x}::{index + 1:x}" for index in range(addresses)]
        body = {"name": _name(), "type": "AAAA", "values": values, "ptr": True}
        count = _counted(api_here, "POST", "/api/v1/records", json=body)
        return sum(1 for sql in count.statements if sql.lstrip().startswith("SELECT rrset.id, rrset.zone_id"))

    # The names the rules consult, then the PTRs at the addresses' reverse names: one query each,
    # not one SELECT per address. (Writing them costs more when some PTRs exist already: an UPDATE.)
    assert rrset_reads(1) == rrset_reads(20) == 2


def _client(api: InProcessApi, env: dict[str, str], *, scopes: tuple[str, ...]) -> httpx.Client:
    key = make_client(env, f"bulk-{unique_label('c')}", BULK_ZONE, scopes=scopes)
    return httpx.Client(base_url=api.http.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every value the planner parses (service/dns/rdata.py's normalize_value, as changes.py calls it)."""
    seen: list[str] = []
    parse = rdata.normalize_value

    def counting(rtype: str, raw: str) -> str:
        seen.append(raw[:20])
        return parse(rtype, raw)

    monkeypatch.setattr(changes, "normalize_value", counting)
    return seen


def test_a_key_without_the_scope_or_the_zone_is_refused_before_any_value_is_parsed(
    api_here: InProcessApi, stack_env: dict[str, str], parsed: list[str]
) -> None:
    huge = "x" * 3_000_000  # a 3 MB TXT value: seconds of parsing, were it parsed
    with (
        _client(api_here, stack_env, scopes=("read",)) as reader,
        _client(api_here, stack_env, scopes=("write",)) as writer,
    ):
        no_scope = reader.post("/api/v1/records", json={"name": _name(), "type": "TXT", "values": [huge]})
        elsewhere = f"{unique_label('other')}.{ZONE}."  # a zone the writer is not granted
        no_zone = writer.post("/api/v1/records", json={"name": elsewhere, "type": "TXT", "values": [huge]})

    assert (no_scope.status_code, no_scope.json()["code"]) == (403, "scope_missing")
    assert (no_zone.status_code, no_zone.json()["code"]) == (403, "zone_not_granted")
    assert parsed == []


def test_values_longer_than_any_rrset_dns_can_carry_are_refused_unread(
    api_here: InProcessApi, parsed: list[str]
) -> None:
    values = [f'"{"v" * 40_000}"', f'"{"w" * 40_001}"']  # 80,001 characters: more than 16,000 octets can be
    answer = api_here.http.post("/api/v1/records", json={"name": _name(), "type": "TXT", "values": values})

    assert answer.status_code == 422, answer.text
    (violation,) = answer.json()["violations"]
    assert violation["field"] == "values"
    assert "16000 octets" in violation["message"]
    assert parsed == []


def test_a_batch_of_a_client_with_quotas_counts_its_rrsets_once_and_from_the_index(
    api_here: InProcessApi, stack_env: dict[str, str]
) -> None:
    label = unique_label("quota")
    bodies = [{"name": f"h{index}.{label}.{BULK_ZONE}.", "type": "A", "values": ["192.0.2.9"]} for index in range(20)]
    writes = [{"operation": "record.create", "body": body} for body in bodies]
    with _client(api_here, stack_env, scopes=("write",)) as writer:  # not an admin: the default quotas hold
        writer.get("/api/v1/records", params={"limit": 1})
        with counted(api_here.engine) as count:
            answer = writer.post("/api/v2/requests:batch", json={"writes": writes})
        with api_here.engine.connect() as connection:  # what PostgreSQL does for that count
            plan = (
                connection.exec_driver_sql(
                    "EXPLAIN SELECT count(*) FROM rrset WHERE created_by = 'x' AND " + CREATED_AND_EXISTING
                )
                .scalars()
                .all()
            )

    assert answer.status_code == 200, answer.text
    assert [result["status"] for result in answer.json()["results"]] == [202] * 20
    counts = [sql for sql in count.statements if "count(*)" in sql and "rrset.created_by" in sql]
    assert len(counts) == 1, str(count)  # once for the batch, then kept by each write
    assert len([sql for sql in count.statements if sql.lstrip().startswith("UPDATE api_client")]) == 20
    assert any("ix_rrset_created_by" in line for line in plan), plan
