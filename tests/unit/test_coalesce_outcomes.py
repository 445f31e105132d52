"""What a pass concludes for each request it applied: its own steps, status and changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from db.models import Zone
from service.core.errors import TransientDnsError
from workers.batch import Attempt, Change, Pass, Row, ZoneResult
from workers.claim import Claimed, Member
from workers.outcomes import conclude
from workers.updates import Failure

ZONE = Zone(id=1, name="example.test.", primary_host="127.0.0.1", primary_port=53, tsig_key_name="k")
AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
LEADER, OTHER = uuid.uuid4(), uuid.uuid4()
WWW, MAIL = ("www.example.test.", "A"), ("mail.example.test.", "A")


def members() -> Claimed:
    return Claimed([Member(LEADER, "team", 1, "api", leader=True), Member(OTHER, "team", 3, "kafka", leader=False)])


def change(change_id: int, request_id: uuid.UUID, key: tuple[str, str], version: int) -> Change:
    return Change(change_id, request_id, 0, 1, key[0], key[1], version, "pending", None, None)


def rows() -> dict[tuple[str, str], Row]:
    return {
        WWW: Row(10, WWW[0], "A", 300, ["192.0.2.2"], 2, {"ttl": 300, "values": ["192.0.2.1"], "version": 1}),
        MAIL: Row(11, MAIL[0], "A", 300, [], 4, None),
    }


def applied(failures: dict[tuple[str, str], Failure] | None = None) -> dict[int, ZoneResult]:
    return {1: ZoneResult(ZONE, [WWW, MAIL], failures or {}, 1, AT, AT, 1.5, 2)}


def steps(events: list[dict[str, object]], request_id: uuid.UUID) -> list[object]:
    return [event["step"] for event in events if event["request_id"] == request_id]


def test_two_requests_on_one_rrset_the_earlier_is_superseded_and_each_ends_with_its_own_steps() -> None:
    work = Pass(
        members(), [change(1, LEADER, WWW, 1), change(2, OTHER, WWW, 2), change(3, OTHER, MAIL, 4)], rows(), {1: ZONE}
    )

    outcome, error = conclude(work, Attempt(1, final=False), applied(), {})

    assert error is None
    assert sorted(outcome.changes) == [
        (1, "superseded", None, None),
        (2, "succeeded", None, None),
        (3, "succeeded", None, None),
    ]
    assert outcome.rrsets == {10: ("active", {"ttl": 300, "values": ["192.0.2.2"], "version": 2})}
    assert outcome.deleted == {11}
    assert [row[:3] for row in outcome.requests] == [(LEADER, "succeeded", 1), (OTHER, "succeeded", 3)]
    for request_id in (LEADER, OTHER):
        assert steps(outcome.events, request_id) == ["started", "dns_sent", "dns_verified", "succeeded"]
    started = [event["detail"] for event in outcome.events if event["step"] == "started"]
    assert started == [{"attempt": 1, "batch": 2}, {"attempt": 3, "batch": 2, "led_by": str(LEADER)}]


def test_a_create_whose_rrset_a_later_request_deleted_is_superseded_not_succeeded() -> None:
    gone = ("gone.example.test.", "A")  # no row: deleted and proven gone by an earlier pass
    created = Change(1, LEADER, 0, 1, gone[0], gone[1], 1, "pending", None, None, "create")
    deleted = Change(2, OTHER, 0, 1, gone[0], gone[1], 2, "pending", None, None, "delete")
    result = {1: ZoneResult(ZONE, [gone], {}, 1, AT, AT, 1.0, 2)}

    outcome, _ = conclude(Pass(members(), [created, deleted], {}, {1: ZONE}), Attempt(1, final=False), result, {})

    assert sorted(outcome.changes) == [(1, "superseded", None, None), (2, "succeeded", None, None)]


def test_a_failed_rrset_fails_only_the_request_that_changes_it() -> None:
    work = Pass(members(), [change(1, LEADER, WWW, 2), change(2, OTHER, MAIL, 4)], rows(), {1: ZONE})

    outcome, _ = conclude(work, Attempt(1, final=False), applied({MAIL: Failure("refused", "REFUSED")}), {})

    assert outcome.rrsets == {10: ("active", {"ttl": 300, "values": ["192.0.2.2"], "version": 2}), 11: ("error", None)}
    assert outcome.deleted == set()
    assert [row[:4] for row in outcome.requests] == [(LEADER, "succeeded", 1, None), (OTHER, "failed", 3, "refused")]


def test_a_transient_failure_retries_the_messages_request_and_releases_the_others_untouched() -> None:
    work = Pass(members(), [change(1, LEADER, WWW, 2), change(2, OTHER, MAIL, 4)], rows(), {1: ZONE})
    timeout = TransientDnsError("no answer within 2 s", code="dns_timeout")

    outcome, error = conclude(work, Attempt(1, final=False), {}, {1: timeout})

    assert error is timeout
    assert (outcome.changes, outcome.rrsets, outcome.deleted) == ([], {}, set())
    assert [row[:4] for row in outcome.requests] == [(LEADER, "retrying", 1, "dns_timeout")]
    assert steps(outcome.events, LEADER) == ["started", "retry_scheduled"]
    assert steps(outcome.events, OTHER) == []


def test_the_last_attempt_fails_the_request_its_changes_and_its_rrsets() -> None:
    work = Pass(Claimed([members().leader]), [change(1, LEADER, WWW, 2)], rows(), {1: ZONE})

    outcome, _ = conclude(
        work, Attempt(3, final=True), {}, {1: TransientDnsError("unreachable", code="dns_unreachable")}
    )

    assert outcome.changes == [(1, "failed", "retries_exhausted", "unreachable")]
    assert outcome.rrsets == {10: ("error", None)}
    assert outcome.requests[0][:4] == (LEADER, "failed", 1, "retries_exhausted")
    assert steps(outcome.events, LEADER) == ["started", "dead_lettered", "failed"]
