"""Planning change sets without a database: what each operation plans, and what is refused.

Every test builds the stored desired state by hand, sends changes as the v1 or v2 API
would, and checks the plan a user would see (owner, type, action, before, after) or the
error: its type, its code, and for a 422 the field and a key word of each violation.
"""

from __future__ import annotations

from collections import Counter

import pytest

from db.models import MAX_TTL, RRset, RRsetStatus
from db.schemas import ChangeIn, Operation
from service.core.errors import Conflict, InvalidRequest, NotFound
from tests.unit.planning import (
    EXAMPLE,
    NOWILD,
    SUB,
    Seen,
    assert_violations,
    change,
    content,
    parse_v2,
    plan_v1,
    plan_v2,
    rrset,
    seen,
    state,
    zone,
    zones,
)

WWW = "www.example.test."
MAIL = "mail.example.test."
IP1, IP2, IP3 = "192.0.2.1", "192.0.2.2", "192.0.2.3"

# Operations, one or several in one change set -----------------------------------------


@pytest.mark.parametrize(
    ("stored", "sent", "planned"),
    [
        pytest.param(
            [],
            [change("create", "www.example.test", "A", [IP1], ttl=300)],
            [(WWW, "A", "create", None, content(300, IP1))],
            id="create-absent",
        ),
        pytest.param(
            [],
            [change("create", "www.example.test", "A", [IP1])],
            [(WWW, "A", "create", None, content(3600, IP1))],
            id="create-takes-the-zone-default-ttl",
        ),
        pytest.param(
            [rrset(WWW, "A", [], status=RRsetStatus.deleting)],
            [change("create", "www.example.test", "A", [IP1])],
            [(WWW, "A", "create", None, content(3600, IP1))],
            id="create-over-a-pending-deletion",
        ),
        pytest.param(
            [],
            [change("upsert", "www.example.test", "A", [IP1])],
            [(WWW, "A", "create", None, content(3600, IP1))],
            id="upsert-absent-creates-with-the-zone-default-ttl",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1], ttl=300)],
            [change("upsert", "www.example.test", "A", [IP2, IP3])],
            [(WWW, "A", "update", content(300, IP1), content(300, IP2, IP3))],
            id="upsert-present-keeps-the-ttl-when-omitted",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1], ttl=300)],
            [change("upsert", "www.example.test", "A", [IP1], ttl=600)],
            [(WWW, "A", "update", content(300, IP1), content(600, IP1))],
            id="upsert-changes-only-the-ttl",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1])],
            [change("delete", "www.example.test", "A")],
            [(WWW, "A", "delete", content(3600, IP1), None)],
            id="delete-present",
        ),
        pytest.param(
            [],
            [change("add", "www.example.test", "A", [IP1, IP2], ttl=120)],
            [(WWW, "A", "create", None, content(120, IP1, IP2))],
            id="add-absent-creates",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1], ttl=300)],
            [change("add", "www.example.test", "A", [IP2])],
            [(WWW, "A", "update", content(300, IP1), content(300, IP1, IP2))],
            id="add-present-makes-the-union",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1, IP2, IP3])],
            [change("remove", "www.example.test", "A", [IP1, IP3])],
            [(WWW, "A", "update", content(3600, IP1, IP2, IP3), content(3600, IP2))],
            id="remove-some-values",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1, IP2])],
            [change("remove", "www.example.test", "A", [IP2, IP1])],
            [(WWW, "A", "delete", content(3600, IP1, IP2), None)],
            id="remove-every-value-deletes-the-rrset",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1, IP2])],
            [change("remove", "www.example.test", "A", [IP2], ttl=900)],
            [(WWW, "A", "update", content(3600, IP1, IP2), content(900, IP1))],
            id="remove-with-a-ttl-sets-it",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1])],
            [change("delete", "www.example.test", "A"), change("create", "www.example.test", "A", [IP2])],
            [(WWW, "A", "update", content(3600, IP1), content(3600, IP2))],
            id="delete-then-create-is-one-update",
        ),
        pytest.param(
            [],
            [
                change("create", "www.example.test", "A", [IP1]),
                change("add", "www.example.test", "A", [IP2, IP3]),
                change("remove", "www.example.test", "A", [IP1]),
            ],
            [(WWW, "A", "create", None, content(3600, IP2, IP3))],
            id="create-add-remove-combine-in-order",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1])],
            [change("upsert", "www.example.test", "A", [IP2]), change("delete", "www.example.test", "A")],
            [(WWW, "A", "delete", content(3600, IP1), None)],
            id="upsert-then-delete-is-a-delete",
        ),
        pytest.param(
            [],
            [change("create", "www.example.test", "A", [IP1]), change("delete", "www.example.test", "A")],
            [],
            id="create-then-delete-of-an-absent-rrset-plans-nothing",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1])],
            [change("upsert", "www.example.test", "A", [IP1])],
            [],
            id="unchanged-active-rrset-plans-nothing",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1], status=RRsetStatus.pending)],
            [change("add", "www.example.test", "A", [IP1])],
            [(WWW, "A", "update", content(3600, IP1), content(3600, IP1))],
            id="unchanged-pending-rrset-is-queued-again-not-reported-done",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1], status=RRsetStatus.error)],
            [change("upsert", "www.example.test", "A", [IP1])],
            [(WWW, "A", "update", content(3600, IP1), content(3600, IP1))],
            id="unchanged-rrset-whose-apply-failed-is-planned-again",
        ),
        pytest.param(
            [rrset(MAIL, "A", [IP3])],
            [
                change("upsert", "WWW.Example.Test", "a", [" 192.0.2.1 "]),
                change("delete", "mail.example.test.", "A"),
                change("create", "example.test", "MX", ["10 Mail.Example.NET"]),
                change("create", "example.test", "AAAA", ["2001:DB8:0:0::1"]),
            ],
            [
                (WWW, "A", "create", None, content(3600, IP1)),
                (MAIL, "A", "delete", content(3600, IP3), None),
                (EXAMPLE, "MX", "create", None, content(3600, "10 mail.example.net.")),
                (EXAMPLE, "AAAA", "create", None, content(3600, "2001:db8::1")),
            ],
            id="several-rrsets-in-the-order-sent-names-and-values-normalised",
        ),
    ],
)
def test_a_change_set_plans_what_each_operation_does(
    stored: list[RRset], sent: list[ChangeIn], planned: list[Seen]
) -> None:
    assert seen(plan_v2(state(*stored), *sent)) == planned


def test_a_failed_deletion_can_be_deleted_again() -> None:
    desired = state(rrset(WWW, "A", [], status=RRsetStatus.error))

    (item,) = plan_v1(desired, change("delete", "www.example.test", "A"))

    assert (item.owner, item.rtype, item.before, item.after) == (WWW, "A", None, None)


def test_a_failed_deletion_deleted_again_is_planned_as_a_delete() -> None:
    desired = state(rrset(WWW, "A", [], status=RRsetStatus.error))

    (item,) = plan_v2(desired, change("delete", "www.example.test", "A"))

    assert item.action.value == "delete"


def test_a_pending_deletion_cannot_be_deleted_again_in_v1() -> None:
    desired = state(rrset(WWW, "A", [], status=RRsetStatus.deleting))

    with pytest.raises(NotFound) as error:
        plan_v1(desired, change("delete", "www.example.test", "A"))

    assert error.value.code == "rrset_not_found"


# v1: one RRset, 409 when it exists and 404 when it does not ----------------------------


def test_v1_create_of_an_existing_rrset_is_a_409_rrset_exists() -> None:
    with pytest.raises(Conflict) as error:
        plan_v1(state(rrset(WWW, "A", [IP1])), change("create", "www.example.test", "A", [IP2]))

    assert error.value.code == "rrset_exists"
    assert WWW in error.value.detail


@pytest.mark.parametrize("op", ["delete", "remove"])
def test_v1_change_of_a_missing_rrset_is_a_404_rrset_not_found(op: Operation) -> None:
    values = None if op == "delete" else [IP1]

    with pytest.raises(NotFound) as error:
        plan_v1(state(), ChangeIn(op=op, name="www.example.test", type="A", values=values))

    assert error.value.code == "rrset_not_found"
    assert "does not exist" in error.value.detail


def test_v1_upsert_and_delete_plan_one_item() -> None:
    desired = state(rrset(WWW, "A", [IP1], ttl=300))

    assert seen(plan_v1(desired, change("upsert", "www.example.test", "A", [IP2]))) == [
        (WWW, "A", "update", content(300, IP1), content(300, IP2))
    ]
    assert seen(plan_v1(desired, change("delete", "www.example.test", "A"))) == [
        (WWW, "A", "delete", content(300, IP1), None)
    ]


def test_v1_violations_name_bare_fields() -> None:
    with pytest.raises(InvalidRequest) as error:
        plan_v1(state(), change("create", "www.example.test", "A", ["192.0.2.300"], ttl=-1))

    assert_violations(error, [("values[0]", "IPv4"), ("ttl", "between 0")])


# v2: conflicts with the change set itself are violations --------------------------------


def test_v2_create_of_an_untouched_existing_rrset_is_a_409_rrset_exists() -> None:
    with pytest.raises(Conflict) as error:
        plan_v2(state(rrset(WWW, "A", [IP1])), change("create", "www.example.test", "A", [IP2]))

    assert error.value.code == "rrset_exists"


@pytest.mark.parametrize(
    ("stored", "sent", "expected"),
    [
        pytest.param(
            [],
            [change("create", "www.example.test", "A", [IP1]), change("create", "www.example.test", "A", [IP2])],
            [("changes[1].name", "created twice")],
            id="created-twice",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1])],
            [change("upsert", "www.example.test", "A", [IP2]), change("create", "www.example.test", "A", [IP3])],
            [("changes[1].name", "created twice")],
            id="created-after-an-upsert",
        ),
        pytest.param(
            [],
            [change("delete", "www.example.test", "A")],
            [("changes[0].name", "does not exist")],
            id="delete-absent",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1])],
            [change("delete", "www.example.test", "A"), change("delete", "www.example.test", "A")],
            [("changes[1].name", "does not exist")],
            id="deleted-twice",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1])],
            [change("remove", "www.example.test", "A", [IP1, IP2, IP3])],
            [("changes[0].values", "192.0.2.2"), ("changes[0].values", "192.0.2.3")],
            id="remove-values-not-present",
        ),
        pytest.param(
            [],
            [change("remove", "mail.example.test", "A", [IP1]), change("delete", "www.example.test", "TXT")],
            [("changes[0].name", "does not exist"), ("changes[1].name", "does not exist")],
            id="every-missing-rrset-reported-together",
        ),
    ],
)
def test_v2_operations_that_cannot_be_played_are_violations(
    stored: list[RRset], sent: list[ChangeIn], expected: list[tuple[str, str]]
) -> None:
    with pytest.raises(InvalidRequest) as error:
        plan_v2(state(*stored), *sent)

    assert_violations(error, expected)


# Parsing: every violation of a body, with its field --------------------------------------


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        pytest.param(change("create", "www.example.test", "SPF", ["x"]), [("type", "not supported")], id="type"),
        pytest.param(change("create", "www..example.test", "A", [IP1]), [("name", "empty label")], id="empty-label"),
        pytest.param(
            change("create", "x" * 64 + ".example.test", "A", [IP1]), [("name", "64 characters")], id="long-label"
        ),
        pytest.param(
            change("create", "_foo.example.test", "A", [IP1]), [("name", "underscore")], id="underscore-in-a-owner"
        ),
        pytest.param(
            change("create", "a.*.example.test", "A", [IP1]), [("name", "wildcard")], id="wildcard-not-leftmost"
        ),
        pytest.param(change("create", "www.example.test", "A"), [("values", "at least one")], id="create-no-values"),
        pytest.param(change("upsert", "www.example.test", "A", []), [("values", "at least one")], id="upsert-empty"),
        pytest.param(change("add", "www.example.test", "A"), [("values", "at least one")], id="add-no-values"),
        pytest.param(change("remove", "www.example.test", "A"), [("values", "at least one")], id="remove-no-values"),
        pytest.param(change("delete", "www.example.test", "A", [IP1]), [("values", "no values")], id="delete-values"),
        pytest.param(
            change("create", "www.example.test", "A", [f"192.0.2.{i}" for i in range(101)]),
            [("values", "limit is 100")],
            id="101-values",
        ),
        pytest.param(
            change("create", "www.example.test", "A", [IP1, IP2, f" {IP1}"]),
            [("values[2]", "repeats")],
            id="duplicate-a",
        ),
        pytest.param(
            change("create", "www.example.test", "AAAA", ["2001:db8::1", "2001:DB8:0::1"]),
            [("values[1]", "repeats")],
            id="duplicate-aaaa-after-normalisation",
        ),
        pytest.param(change("create", "www.example.test", "A", ["300.1.2.3"]), [("values[0]", "IPv4")], id="bad-a"),
        pytest.param(change("create", "www.example.test", "AAAA", [IP1]), [("values[0]", "IPv6")], id="bad-aaaa"),
        pytest.param(
            change("create", "example.test", "MX", ["mail.example.test"]), [("values[0]", "1 field")], id="bad-mx"
        ),
        pytest.param(
            change("create", "www.example.test", "CNAME", ["a..b"]), [("values[0]", "target")], id="bad-cname"
        ),
        pytest.param(
            change("create", "_sip._tcp.example.test", "SRV", ["10 5 99999 sip.example.test"]),
            [("values[0]", "port")],
            id="bad-srv",
        ),
        pytest.param(
            change("create", "example.test", "CAA", ["0 issue"]), [("values[0]", "has no value")], id="bad-caa"
        ),
        pytest.param(
            change("create", "www.example.test", "A", [IP1], ttl=-1),
            [("ttl", "between 0")],
            id="negative-ttl",
        ),
        pytest.param(
            change("create", "www.example.test", "A", [IP1], ttl=MAX_TTL + 1),
            [("ttl", "2147483647")],
            id="huge-ttl",
        ),
        pytest.param(
            change("create", "www.example.test", "A", [IP1], ttl=59), [("ttl", "policy of 60 to 86400")], id="ttl-59"
        ),
        pytest.param(
            change("add", "www.example.test", "A", [IP1], ttl=86401), [("ttl", "policy of 60 to 86400")], id="ttl-86401"
        ),
        pytest.param(
            change("create", "example.test", "MX", ["10 mail.example.test"], ptr=True),
            [("ptr", "A and AAAA only")],
            id="ptr-on-mx",
        ),
        pytest.param(
            change("create", "www.other.invalid", "A", [IP1]), [("name", "not inside any zone")], id="outside-zones"
        ),
        pytest.param(
            change("create", "www.nowild.test", "A", [IP1]), [("name", "not in zone example.test.")], id="other-zone"
        ),
        pytest.param(
            change("create", "www.sub.example.test", "A", [IP1]),
            [("name", "belongs to the registered zone sub.example.test.")],
            id="registered-child-zone",
        ),
    ],
)
def test_a_bad_change_is_refused_naming_its_field(sent: ChangeIn, expected: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_v2(change("upsert", "ok.example.test", "A", [IP1]), sent)

    assert_violations(error, [(f"changes[1].{field}", word) for field, word in expected])


def test_every_violation_of_a_body_is_reported_together() -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_v2(
            change("create", "www..example.test", "A", ["192.0.2.300", "bad"], ttl=-5),
            change("delete", "mail.example.test", "MX", ["10 mail.example.test"], ptr=True),
            change("upsert", "ok.example.test", "A", [IP1]),
            change("add", "host.elsewhere.invalid", "SPF"),
        )

    assert_violations(
        error,
        [
            ("changes[0].name", "empty label"),
            ("changes[0].values[0]", "IPv4"),
            ("changes[0].values[1]", "IPv4"),
            ("changes[0].ttl", "between 0"),
            ("changes[1].values", "no values"),
            ("changes[1].ptr", "A and AAAA only"),
            ("changes[3].type", "not supported"),
            ("changes[3].values", "at least one"),
            ("changes[3].name", "not inside any zone"),
        ],
    )


@pytest.mark.parametrize(
    ("name", "rtype", "value", "owner"),
    [
        ("_acme-challenge.example.test", "TXT", "token", "_acme-challenge.example.test."),
        ("_dmarc.example.test", "CNAME", "dmarc.example.net", "_dmarc.example.test."),
        ("_sip._tcp.example.test", "SRV", "10 5 5060 sip.example.net", "_sip._tcp.example.test."),
        ("*.example.test", "A", IP1, "*.example.test."),
        ("Example.Test.", "MX", "0 .", EXAMPLE),
    ],
)
def test_owner_names_are_accepted_where_their_type_allows(name: str, rtype: str, value: str, owner: str) -> None:
    (operation,) = parse_v2(change("create", name, rtype, [value]))

    assert (operation.owner, operation.rtype, operation.zone.name) == (owner, rtype, EXAMPLE)


def test_100_values_and_the_ttl_limits_of_the_zone_policy_are_accepted() -> None:
    values = [f"192.0.2.{i}" for i in range(100)]

    operations = parse_v2(
        change("create", "www.example.test", "A", values, ttl=60),
        change("create", "mail.example.test", "A", [IP1], ttl=86400),
    )

    assert [(len(operation.values), operation.ttl) for operation in operations] == [(100, 60), (1, 86400)]


def test_without_a_scope_an_owner_goes_to_the_closest_registered_zone() -> None:
    operations = parse_v2(
        change("create", "www.sub.example.test", "A", [IP1]),
        change("create", "www.nowild.test", "A", [IP1]),
        scope=None,
    )

    assert [operation.zone.name for operation in operations] == [SUB, NOWILD]


# The mass-change guard ---------------------------------------------------------------


def hosts(number: int) -> list[RRset]:
    return [rrset(f"host{i}.example.test.", "A", [f"192.0.2.{i}"]) for i in range(number)]


def deletions(number: int) -> list[ChangeIn]:
    return [change("delete", f"host{i}.example.test", "A") for i in range(number)]


def test_deleting_more_than_the_zone_share_is_refused_unless_forced() -> None:
    with pytest.raises(Conflict) as error:
        plan_v2(state(*hosts(20)), *deletions(7))

    assert error.value.code == "mass_change_refused"
    assert "7 of the 20" in error.value.detail
    assert "force" in error.value.detail


def test_force_passes_the_mass_change_guard() -> None:
    items = plan_v2(state(*hosts(20)), *deletions(7), force=True)

    assert [item.action.value for item in items] == ["delete"] * 7


def test_rewrites_count_like_deletions_for_the_guard() -> None:
    sent = [change("upsert", f"host{i}.example.test", "A", ["198.51.100.1"]) for i in range(5)]

    with pytest.raises(Conflict) as error:
        plan_v2(state(*hosts(20)), *sent, *deletions(7)[5:])

    assert error.value.code == "mass_change_refused"


@pytest.mark.parametrize(
    ("stored", "sent", "planned"),
    [
        pytest.param(20, deletions(6), {"delete": 6}, id="exactly-the-share"),
        pytest.param(9, deletions(9), {"delete": 9}, id="a-zone-of-9-rrsets-is-never-guarded"),
        pytest.param(
            20,
            [change("create", f"new{i}.example.test", "A", [IP1]) for i in range(15)],
            {"create": 15},
            id="creates-do-not-count",
        ),
        pytest.param(
            20,
            [change("upsert", f"host{i}.example.test", "A", [f"192.0.2.{i}"]) for i in range(20)],
            {},
            id="unchanged-rrsets-do-not-count",
        ),
    ],
)
def test_changes_within_the_guard_pass(stored: int, sent: list[ChangeIn], planned: dict[str, int]) -> None:
    items = plan_v2(state(*hosts(stored)), *sent)

    assert Counter(item.action.value for item in items) == planned  # planned whole, not refused


def test_tombstones_do_not_count_as_rrsets_of_the_zone() -> None:
    tombstones = [rrset(f"gone{i}.example.test.", "A", [], status=RRsetStatus.deleting) for i in range(5)]

    with pytest.raises(Conflict) as error:
        plan_v2(state(*hosts(10), *tombstones), *deletions(4))

    assert "4 of the 10" in error.value.detail


def test_a_v1_call_is_never_a_mass_change() -> None:
    registered = {**zones(), 1: zone(EXAMPLE, mass_change_share=0.05)}
    sent = change("delete", "host1.example.test", "A")

    with pytest.raises(Conflict) as error:
        plan_v2(state(*hosts(10), registered=registered), sent)
    items = plan_v1(state(*hosts(10), registered=registered), sent)

    assert error.value.code == "mass_change_refused"
    assert [item.action.value for item in items] == ["delete"]
