"""Group commit (service/requests/groups.py): v1 writes that arrive at one API process together are
accepted in one transaction, and each is still answered as its single call would be.

The writes are handed to the process's WriteGroups all at once (asyncio.gather), against the
tests' real PostgreSQL and RabbitMQ, with the stack's workers applying them to BIND 9: so the
group is exactly the writes given, and what each caller would see can be checked — its answer,
its tracker row, the DNS answer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from db.engine import make_engine
from service.core.dispatch import Dispatcher, make_broker
from service.core.errors import Conflict, Forbidden, HostmasterError, InvalidRequest, NotFound
from service.core.settings import load_settings
from service.registry import clients
from service.registry.clients import Principal
from service.requests import provisioning
from service.requests.groups import Pending, WriteGroups
from tests.integration.dns_helpers import served, texts
from tests.sqlcount import counted
from tests.support import BULK_ZONE, ZONE, Bind, make_client, unique_label, wait_for_terminal

pytestmark = pytest.mark.integration

ADMIN = Principal("test-admin", frozenset({"admin"}), ("*",))


@pytest.fixture(scope="module")
def groups(stack_env: dict[str, str], admin_key: str, monkeypatch_module: pytest.MonkeyPatch) -> Iterator[WriteGroups]:
    for name, value in stack_env.items():
        if name.startswith("HOSTMASTER_") or name == "APP_ENV":
            monkeypatch_module.setenv(name, value)
    settings = load_settings()
    engine = make_engine(settings.database_dsn, connect_timeout_s=5, pool_size=5)
    broker = make_broker(settings)
    yield WriteGroups(
        engine=engine,
        dispatcher=Dispatcher(broker, settings.queue_name),
        limits=provisioning.Limits.of(settings),
    )
    broker.close()
    engine.dispose()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def principal_of(groups: WriteGroups, key: str) -> Principal:
    """The client of ``key`` as the API's authentication gives it to a route."""
    with Session(groups.engine) as session:
        return clients.authenticate(session, key, load_settings().pepper)


def create(name: str, value: str, principal: Principal = ADMIN, *, key: str | None = None) -> Pending:
    body = json.dumps({"name": name, "type": "A", "values": [value]}).encode()
    return Pending(uuid.uuid4(), "record.create", provisioning.record_create, body, principal, idempotency_key=key)


def accept_together(groups: WriteGroups, writes: list[Pending]) -> list[provisioning.Outcome | HostmasterError]:
    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(groups.accept(write) for write in writes), return_exceptions=True)

    return asyncio.run(all_at_once())


def test_writes_arriving_together_share_one_commit_and_each_is_its_own_request(
    groups: WriteGroups, stack: httpx.Client, bind: Bind
) -> None:
    parent = f"{unique_label('grp')}.{BULK_ZONE}"
    writes = [create(f"h{index}.{parent}", f"192.0.2.{index + 1}") for index in range(20)]

    with counted(groups.engine) as count:
        answers = accept_together(groups, writes)

    assert all(isinstance(answer, provisioning.Outcome) for answer in answers), answers
    # One opening statement for the 20 tracker rows, the zones, one savepoint'ed plan each, one COMMIT.
    assert count.commits == 1, str(count)
    assert len(count.statements) <= 3 + 6 * len(writes), str(count)
    ids = [answer.request.id for answer in answers if isinstance(answer, provisioning.Outcome) and answer.request]
    assert ids == [write.request_id for write in writes]  # each answered with its own request
    for index, request_id in enumerate(ids):
        final = wait_for_terminal(stack, str(request_id))
        assert final["status"] == "succeeded", final
        assert [event["step"] for event in final["events"]][:3] == ["received", "validated", "queued"]
        assert {event["client"] for event in final["events"]} == {ADMIN.name}  # every step names its client
        assert texts(served(bind, f"h{index}.{parent}", "A")) == [f"192.0.2.{index + 1}"]


def test_a_refused_write_in_a_group_is_refused_alone_as_its_single_call_would_be(
    groups: WriteGroups, stack: httpx.Client, stack_env: dict[str, str], bind: Bind
) -> None:
    parent = f"{unique_label('grpbad')}.{BULK_ZONE}"
    other = principal_of(groups, make_client(stack_env, f"bulk-only-{unique_label('g')}", BULK_ZONE))
    key = f"evt-{uuid.uuid4()}"
    writes = [
        create(f"a.{parent}", "192.0.2.11"),
        create(f"a.{parent}", "192.0.2.12"),  # the same RRset as the write before it: 409
        Pending(uuid.uuid4(), "record.create", provisioning.record_create, b"{not json", ADMIN),
        Pending(
            uuid.uuid4(),
            "record.delete",
            provisioning.record_delete(f"missing.{parent}", "A"),
            None,
            ADMIN,
            target={"name": f"missing.{parent}", "type": "A"},
        ),
        create(f"b.{parent}", "192.0.2.13", other),
        create(f"x.{unique_label('nogrant')}.{ZONE}", "192.0.2.14", other),  # a zone it is not granted
        create(f"k.{parent}", "192.0.2.15", key=key),
        create(f"k.{parent}", "192.0.2.15", key=key),  # the same key and body again: the same request
    ]

    answers = accept_together(groups, writes)

    kinds = [type(answer) for answer in answers]
    assert kinds == [
        provisioning.Outcome,
        Conflict,
        InvalidRequest,
        NotFound,
        provisioning.Outcome,
        Forbidden,
        provisioning.Outcome,
        provisioning.Outcome,
    ], answers
    replayed = answers[7]
    assert isinstance(replayed, provisioning.Outcome)
    assert replayed.repeated
    assert replayed.request is not None
    assert replayed.request.id == writes[6].request_id
    for index in (0, 4, 6):
        assert wait_for_terminal(stack, str(writes[index].request_id))["status"] == "succeeded"
    assert texts(served(bind, f"a.{parent}", "A")) == ["192.0.2.11"]
    assert texts(served(bind, f"b.{parent}", "A")) == ["192.0.2.13"]
    for index in (1, 2, 3, 5):  # each refusal is a request too, rejected with its reason
        tracked = stack.get(f"/api/v1/requests/{writes[index].request_id}").json()
        refusal = answers[index]
        assert isinstance(refusal, HostmasterError)
        assert (tracked["status"], tracked["error_code"]) == ("rejected", refusal.code), tracked
