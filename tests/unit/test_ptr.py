"""Automatic PTR records (service/planning/ptr.py) as a change set plans them, without a database.

An A or AAAA RRset with ``ptr: true`` gets, for each address inside a registered reverse
zone, a PTR pointing back at its owner; addresses that leave take their PTR with them when
it still points at the owner, and a PTR holding other names keeps them.
"""

from __future__ import annotations

import pytest

from db.models import RRset, RRsetStatus
from db.schemas import ChangeIn
from service.core.errors import InvalidRequest
from tests.unit.planning import (
    EXAMPLE,
    REVERSE4,
    Seen,
    assert_violations,
    change,
    content,
    plan_v1,
    plan_v2,
    rrset,
    seen,
    state,
    zone,
    zones,
)

WWW = "www.example.test."
OTHER = "other.example.test."
IP10, IP11 = "192.0.2.10", "192.0.2.11"
PTR10, PTR11 = "10.2.0.192.in-addr.arpa.", "11.2.0.192.in-addr.arpa."
IP6 = "2001:db8::1"
PTR6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
OUTSIDE = "198.51.100.7"  # no registered reverse zone holds it


@pytest.mark.parametrize(
    ("stored", "sent", "planned"),
    [
        pytest.param(
            [],
            [change("create", "www.example.test", "A", [IP10], ttl=300, ptr=True)],
            [(WWW, "A", "create", None, content(300, IP10)), (PTR10, "PTR", "create", None, content(300, WWW))],
            id="create-a-with-ptr",
        ),
        pytest.param(
            [],
            [change("create", "www.example.test", "A", [IP11, IP10, OUTSIDE], ptr=True)],
            [
                (WWW, "A", "create", None, content(3600, IP10, IP11, OUTSIDE)),
                (PTR10, "PTR", "create", None, content(3600, WWW)),
                (PTR11, "PTR", "create", None, content(3600, WWW)),
            ],
            id="one-ptr-per-address-inside-a-reverse-zone",
        ),
        pytest.param(
            [],
            [change("create", "www.example.test", "AAAA", ["2001:DB8:0::1"], ptr=True)],
            [(WWW, "AAAA", "create", None, content(3600, IP6)), (PTR6, "PTR", "create", None, content(3600, WWW))],
            id="create-aaaa-with-ptr-in-the-ip6-zone",
        ),
        pytest.param(
            [],
            [change("create", "www.example.test", "A", [OUTSIDE], ptr=True)],
            [(WWW, "A", "create", None, content(3600, OUTSIDE))],
            id="address-outside-every-reverse-zone",
        ),
        pytest.param(
            [],
            [change("create", "www.example.test", "A", [IP10])],
            [(WWW, "A", "create", None, content(3600, IP10))],
            id="no-ptr-asked",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10], ptr=True), rrset(PTR10, "PTR", [WWW])],
            [change("upsert", "www.example.test", "A", [IP11])],
            [
                (WWW, "A", "update", content(3600, IP10), content(3600, IP11)),
                (PTR10, "PTR", "delete", content(3600, WWW), None),
                (PTR11, "PTR", "create", None, content(3600, WWW)),
            ],
            id="replaced-address-moves-its-ptr-wish-kept-when-omitted",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10], ptr=True), rrset(PTR10, "PTR", ["someone.example.net."])],
            [change("upsert", "www.example.test", "A", [IP11], ptr=True)],
            [
                (WWW, "A", "update", content(3600, IP10), content(3600, IP11)),
                (PTR11, "PTR", "create", None, content(3600, WWW)),
            ],
            id="old-ptr-pointing-elsewhere-is-left-alone",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10, IP11], ptr=True), rrset(PTR10, "PTR", [WWW]), rrset(PTR11, "PTR", [WWW])],
            [change("delete", "www.example.test", "A")],
            [
                (WWW, "A", "delete", content(3600, IP10, IP11), None),
                (PTR10, "PTR", "delete", content(3600, WWW), None),
                (PTR11, "PTR", "delete", content(3600, WWW), None),
            ],
            id="deleted-a-takes-its-ptrs",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10, IP11], ptr=True), rrset(PTR10, "PTR", [WWW]), rrset(PTR11, "PTR", [WWW])],
            [change("remove", "www.example.test", "A", [IP11])],
            [
                (WWW, "A", "update", content(3600, IP10, IP11), content(3600, IP10)),
                (PTR11, "PTR", "delete", content(3600, WWW), None),
            ],
            id="removed-address-takes-its-ptr",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10], ptr=True), rrset(PTR10, "PTR", [WWW, OTHER], ttl=600)],
            [change("delete", "www.example.test", "A")],
            [
                (WWW, "A", "delete", content(3600, IP10), None),
                (PTR10, "PTR", "update", content(600, OTHER, WWW), content(600, OTHER)),
            ],
            id="ptr-holding-another-name-keeps-it",
        ),
        pytest.param(
            [rrset(PTR10, "PTR", [OTHER], ttl=600)],
            [change("create", "www.example.test", "A", [IP10], ptr=True)],
            [
                (WWW, "A", "create", None, content(3600, IP10)),
                (PTR10, "PTR", "update", content(600, OTHER), content(600, OTHER, WWW)),
            ],
            id="existing-ptr-gains-the-owner-and-keeps-its-ttl",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10], ptr=False), rrset(PTR10, "PTR", [WWW])],
            [change("delete", "www.example.test", "A")],
            [(WWW, "A", "delete", content(3600, IP10), None)],
            id="a-without-ptr-wish-leaves-a-matching-ptr-alone",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10], ptr=True), rrset(PTR10, "PTR", [WWW])],
            [change("upsert", "www.example.test", "A", [IP10], ptr=False)],
            [
                (WWW, "A", "update", content(3600, IP10), content(3600, IP10)),
                (PTR10, "PTR", "delete", content(3600, WWW), None),
            ],
            id="ptr-wish-withdrawn-on-an-unchanged-a",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10], ptr=False)],
            [change("upsert", "www.example.test", "A", [IP10], ptr=True)],
            [
                (WWW, "A", "update", content(3600, IP10), content(3600, IP10)),
                (PTR10, "PTR", "create", None, content(3600, WWW)),
            ],
            id="ptr-wish-added-on-an-unchanged-a",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10], ptr=True), rrset(PTR10, "PTR", [WWW])],
            [change("upsert", "www.example.test", "A", [IP10])],
            [],
            id="unchanged-a-with-its-ptr-plans-nothing",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP10], ptr=True)],
            [change("upsert", "www.example.test", "A", [IP10], ptr=True)],
            [(PTR10, "PTR", "create", None, content(3600, WWW))],
            id="missing-ptr-of-an-unchanged-a-is-restored",
        ),
        pytest.param(
            [rrset(OTHER, "A", [IP10], ptr=True), rrset(PTR10, "PTR", [OTHER])],
            [change("delete", "other.example.test", "A"), change("create", "www.example.test", "A", [IP10], ptr=True)],
            [
                (OTHER, "A", "delete", content(3600, IP10), None),
                (WWW, "A", "create", None, content(3600, IP10)),
                (PTR10, "PTR", "update", content(3600, OTHER), content(3600, WWW)),
            ],
            id="address-moving-between-owners-in-one-set",
        ),
    ],
)
def test_automatic_ptrs_follow_the_addresses(stored: list[RRset], sent: list[ChangeIn], planned: list[Seen]) -> None:
    assert seen(plan_v2(state(*stored), *sent)) == planned


def test_without_a_registered_reverse_zone_no_ptr_is_planned() -> None:
    desired = state(registered=zones(EXAMPLE))

    items = plan_v2(desired, change("create", "www.example.test", "A", [IP10], ptr=True))

    assert seen(items) == [(WWW, "A", "create", None, content(3600, IP10))]


def test_a_v1_create_with_ptr_plans_the_ptr_and_remembers_the_wish() -> None:
    items = plan_v1(state(), change("create", "www.example.test", "A", [IP10], ptr=True))

    assert [(item.owner, item.rtype, item.action.value, item.ptr) for item in items] == [
        (WWW, "A", "create", True),
        (PTR10, "PTR", "create", False),
    ]


def test_a_failed_apply_of_an_a_with_ptr_is_planned_again_with_its_missing_ptr() -> None:
    desired = state(rrset(WWW, "A", [IP10], ptr=True, status=RRsetStatus.error))

    items = plan_v2(desired, change("upsert", "www.example.test", "A", [IP10]))

    assert seen(items) == [
        (WWW, "A", "update", content(3600, IP10), content(3600, IP10)),
        (PTR10, "PTR", "create", None, content(3600, WWW)),
    ]


def test_a_ptr_ttl_outside_the_reverse_zone_policy_is_refused_naming_the_ptr_wish() -> None:
    desired = state(registered={**zones(), 4: zone(REVERSE4, min_ttl=600)})

    with pytest.raises(InvalidRequest) as error:
        plan_v2(desired, change("create", "www.example.test", "A", [IP10], ttl=300, ptr=True))

    assert_violations(error, [("changes[0].ptr.ttl", f"zone {REVERSE4}'s policy of 600")])


def test_the_ptr_wish_of_an_earlier_operation_holds_for_a_later_one_that_omits_it() -> None:
    items = plan_v2(
        state(),
        change("create", "www.example.test", "A", [IP10], ptr=True),
        change("add", "www.example.test", "A", [IP11]),
    )

    assert [(item.owner, item.rtype) for item in items] == [(WWW, "A"), (PTR10, "PTR"), (PTR11, "PTR")]


def test_a_wildcard_a_cannot_ask_for_a_ptr() -> None:
    with pytest.raises(InvalidRequest) as error:
        plan_v2(state(), change("create", "*.example.test", "A", [IP10], ptr=True))

    assert_violations(error, [("changes[0].ptr", "wildcard")])


def test_a_ptr_violation_names_the_operation_that_asked_for_the_ptr() -> None:
    desired = state(registered={**zones(), 4: zone(REVERSE4, min_ttl=600)})

    with pytest.raises(InvalidRequest) as error:
        plan_v2(
            desired,
            change("create", "other.example.test", "A", [OUTSIDE], ttl=300),
            change("create", "www.example.test", "A", [IP10], ttl=300, ptr=True),
        )

    assert_violations(error, [("changes[1].ptr.ttl", "policy")])
