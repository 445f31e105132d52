"""Statement budgets of the worker: what applying one request, and 100 coalesced ones, asks of
PostgreSQL and of the DNS server.

The requests are made by an API process on a queue of their own, which no worker reads; the
worker's apply then runs in this process (the same function the actor calls, against the
tests' real PostgreSQL and BIND 9) so SQLAlchemy's events count every statement and commit.
Counts are deterministic; a change that adds a round trip, or one per request, fails here. The
budgets are written down in docs/performance.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from db.engine import make_engine
from service.core.settings import Settings, load_settings
from tests.integration.dns_helpers import served, texts
from tests.sqlcount import counted
from tests.support import BULK_ZONE, Bind, Process, rabbitmq_connection, start_api, unique_label, wait_until
from workers import apply, rfc2136

pytestmark = pytest.mark.integration

# (statements, commits) of one pass: the zone's turn (the message's own request read, the
# zone's advisory lock taken), the claim, its changes, its RRset rows locked, its zone; after
# DNS, one UPDATE each for the changes, the RRsets and the requests, one INSERT for every step;
# one commit. A delete adds the DELETE of its RRset row.
ONE_REQUEST = (9, 1)
HUNDRED_REQUESTS = (9, 1)  # the same: nothing per request
ENDED_REQUEST = (1, 0)  # a message whose request another pass ended: one indexed read, no turn


@dataclass
class Dns:
    """DNS exchanges of a pass: UPDATE messages, and verification connections with their queries."""

    updates: int = 0
    connections: int = 0
    queries: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def held_api(
    stack: httpx.Client, stack_env: dict[str, str], zones: dict[str, str], admin_key: str
) -> Iterator[httpx.Client]:
    """An API whose queue no worker reads; the stack's worker runs, to apply what earlier tests left."""
    queue = f"hostmaster_budget_{uuid.uuid4().hex[:8]}"
    api: Process = start_api("api-budget-worker", {**stack_env, "HOSTMASTER_QUEUE_NAME": queue})
    with httpx.Client(base_url=api.url, timeout=10, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        yield client
    api.stop()
    connection = rabbitmq_connection()
    for suffix in ("", ".DQ", ".XQ"):
        connection.channel().queue_delete(queue + suffix)
    connection.close()


@pytest.fixture(scope="module")
def settings(stack_env: dict[str, str]) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in stack_env.items():
            if name.startswith("HOSTMASTER_") or name == "APP_ENV":
                patch.setenv(name, value)
        patch.setenv("HOSTMASTER_COALESCE_MAX_REQUESTS", "500")
        yield load_settings()


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[Engine]:
    made = make_engine(settings.database_dsn)
    yield made
    made.dispose()


@pytest.fixture
def dns_exchanges(monkeypatch: pytest.MonkeyPatch) -> Dns:
    seen = Dns()
    send_update, served_rrsets = rfc2136.send_update, rfc2136.served_rrsets

    def counting_update(update: Any, server: rfc2136.Server) -> Any:
        seen.updates += 1
        return send_update(update, server)

    def counting_queries(keys: Sequence[tuple[str, str]], server: rfc2136.Server) -> Any:
        seen.connections += 1
        seen.queries.append(len(keys))
        return served_rrsets(keys, server)

    monkeypatch.setattr(rfc2136, "send_update", counting_update)
    monkeypatch.setattr(rfc2136, "served_rrsets", counting_queries)
    return seen


def submit(client: httpx.Client, bodies: list[dict[str, Any]]) -> list[uuid.UUID]:
    def post(body: dict[str, Any]) -> uuid.UUID:
        answer = client.post("/api/v1/records", json=body)
        assert answer.status_code == 202, answer.text
        return uuid.UUID(answer.json()["request_id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, bodies))


def zone_idle(engine: Engine) -> None:
    """Wait until no request of bulk.test waits to be applied: what earlier tests left queued (the
    stack's worker applies it) would join the pass and be counted too. Called before submitting,
    so that the stack's worker has no message of this zone to start a pass with meanwhile."""
    waiting = text(
        "SELECT count(*) FROM request JOIN zone ON zone.id = request.zone_id"
        " WHERE zone.name = :zone AND request.status IN ('queued', 'in_progress', 'retrying')"
    )

    def idle() -> bool:
        with engine.connect() as connection:
            return bool(connection.execute(waiting, {"zone": BULK_ZONE + "."}).scalar_one() == 0)

    wait_until(idle, timeout=60, what=f"the requests of {BULK_ZONE} to be applied")


def first_attempt() -> apply.Attempt:
    return apply.Attempt(number=1, final=False)


def status(client: httpx.Client, request_id: uuid.UUID) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/requests/{request_id}").json()
    return body


def test_applying_one_request_stays_within_its_budget(
    held_api: httpx.Client, engine: Engine, settings: Settings, bind: Bind, dns_exchanges: Dns
) -> None:
    name = f"{unique_label('wb1')}.{BULK_ZONE}"
    zone_idle(engine)
    (request_id,) = submit(held_api, [{"name": name, "type": "A", "values": ["192.0.2.51"]}])

    with counted(engine) as count:
        ended = apply.apply_request(engine, settings, request_id, first_attempt())

    assert ended == []
    assert status(held_api, request_id)["status"] == "succeeded"
    assert texts(served(bind, name, "A")) == ["192.0.2.51"]
    assert (len(count.statements), count.commits) <= ONE_REQUEST, str(count)
    assert (dns_exchanges.updates, dns_exchanges.connections, dns_exchanges.queries) == (1, 1, [1])


def test_applying_100_coalesced_requests_costs_what_one_does(
    held_api: httpx.Client, engine: Engine, settings: Settings, bind: Bind, dns_exchanges: Dns
) -> None:
    parent = f"{unique_label('wb100')}.{BULK_ZONE}"
    names = [f"h{index}.{parent}" for index in range(100)]
    zone_idle(engine)
    request_ids = submit(held_api, [{"name": name, "type": "A", "values": ["192.0.2.52"]} for name in names])

    with counted(engine) as count:
        apply.apply_request(engine, settings, request_ids[0], first_attempt())

    finals = [status(held_api, request_id) for request_id in request_ids]
    assert {final["status"] for final in finals} == {"succeeded"}
    assert all(final["events"][3]["detail"]["batch"] == 100 for final in finals)
    assert texts(served(bind, names[99], "A")) == ["192.0.2.52"]
    assert (len(count.statements), count.commits) <= HUNDRED_REQUESTS, str(count)
    # One UPDATE carries all 100 RRsets; one connection carries the 100 verification queries.
    assert (dns_exchanges.updates, dns_exchanges.connections, dns_exchanges.queries) == (1, 1, [100])

    with counted(engine) as again:
        apply.apply_request(engine, settings, request_ids[57], first_attempt())  # its own message, later
    assert (len(again.statements), again.commits) <= ENDED_REQUEST, str(again)
    assert dns_exchanges.updates == 1


def test_a_delete_adds_only_the_delete_of_its_row(
    held_api: httpx.Client, engine: Engine, settings: Settings, bind: Bind, dns_exchanges: Dns
) -> None:
    name = f"{unique_label('wbdel')}.{BULK_ZONE}"
    zone_idle(engine)
    (made,) = submit(held_api, [{"name": name, "type": "A", "values": ["192.0.2.53"]}])
    apply.apply_request(engine, settings, made, first_attempt())
    answer = held_api.delete(f"/api/v1/records/{name}/A")
    assert answer.status_code == 202, answer.text

    with counted(engine) as count:
        apply.apply_request(engine, settings, uuid.UUID(answer.json()["request_id"]), first_attempt())

    assert served(bind, name, "A") is None
    statements, commits = ONE_REQUEST
    assert (len(count.statements), count.commits) <= (statements + 1, commits), str(count)
