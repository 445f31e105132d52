"""The rules a zone's desired state keeps after a change set (service/planning/rules.py), planned without a database.

A rule broken by the change set itself is a violation naming the operation's field; a clash
with an RRset the change set did not touch is a 409 naming that RRset.
"""

from __future__ import annotations

import pytest

from db.models import RRset
from db.schemas import ChangeIn
from service.core.errors import Conflict, InvalidRequest
from tests.unit.planning import (
    EXAMPLE,
    NOWILD,
    REVERSE4,
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
DELEG = "deleg.example.test."
IP1, IP2 = "192.0.2.1", "192.0.2.2"

# Changes the rules accept --------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "sent"),
    [
        pytest.param([], [change("create", "www.example.test", "CNAME", ["web.example.net"])], id="cname"),
        pytest.param(
            [rrset(WWW, "A", [IP1])],
            [
                change("delete", "www.example.test", "A"),
                change("create", "www.example.test", "CNAME", ["w.example.net"]),
            ],
            id="a-replaced-by-a-cname-in-one-set",
        ),
        pytest.param(
            [rrset(WWW, "CNAME", ["w.example.net."])],
            [change("delete", "www.example.test", "CNAME"), change("create", "www.example.test", "A", [IP1])],
            id="cname-replaced-by-an-a-in-one-set",
        ),
        pytest.param(
            [], [change("create", "deleg.example.test", "NS", ["ns1.other.test", "ns2.other.test"])], id="delegation"
        ),
        pytest.param(
            [],
            [
                change("create", "deleg.example.test", "NS", ["ns1.deleg.example.test"]),
                change("create", "ns1.deleg.example.test", "A", [IP1]),
            ],
            id="delegation-with-its-glue-in-one-set",
        ),
        pytest.param(
            [rrset(DELEG, "NS", ["ns1.deleg.example.test.", "ns2.other.test."])],
            [change("create", "ns1.deleg.example.test", "AAAA", ["2001:db8::53"])],
            id="glue-aaaa-below-a-stored-delegation",
        ),
        pytest.param([], [change("create", "example.test", "MX", ["10 mx.example.net"])], id="mx-outside-the-zone"),
        pytest.param(
            [],
            [
                change("create", "example.test", "MX", ["10 mail.example.test"]),
                change("create", "mail.example.test", "A", [IP1]),
            ],
            id="mx-target-with-its-a-in-the-same-set",
        ),
        pytest.param(
            [rrset("mail.example.test.", "AAAA", ["2001:db8::25"])],
            [change("create", "example.test", "MX", ["10 mail.example.test"])],
            id="mx-target-with-a-stored-aaaa",
        ),
        pytest.param([], [change("create", "example.test", "MX", ["0 ."])], id="null-mx"),
        pytest.param([], [change("create", "_sip._tcp.example.test", "SRV", ["0 0 0 ."])], id="srv-not-available"),
        pytest.param(
            [rrset("sip.example.test.", "A", [IP1])],
            [change("create", "_sip._tcp.example.test", "SRV", ["10 5 5060 sip.example.test"])],
            id="srv-with-service-name-and-target",
        ),
        pytest.param([], [change("create", "*.example.test", "A", [IP1])], id="wildcard-where-allowed"),
        pytest.param(
            [rrset(WWW, "TXT", ['"old"'], ttl=60)],
            [change("add", "www.example.test", "TXT", ["new"])],
            id="ttl-at-the-policy-minimum",
        ),
    ],
)
def test_the_rules_accept(stored: list[RRset], sent: list[ChangeIn]) -> None:
    items = plan_v2(state(*stored), *sent)

    assert len(items) == len(sent)  # one planned change per operation, none refused


def test_the_rules_accept_a_change_outside_the_v2_scope_through_v1() -> None:
    items = plan_v1(state(), change("create", "*.example.test", "TXT", ["catch-all"]))

    assert seen(items) == [("*.example.test.", "TXT", "create", None, content(3600, '"catch-all"'))]


# Changes the rules refuse --------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "sent", "expected"),
    [
        pytest.param(
            [rrset(WWW, "A", [IP1], ttl=30)],
            [change("add", "www.example.test", "A", [IP2])],
            [("changes[0].ttl", "policy of 60 to 86400")],
            id="kept-ttl-below-the-policy",
        ),
        pytest.param(
            [],
            [change("create", "example.test", "CNAME", ["web.example.net"])],
            [("changes[0].type", "apex")],
            id="cname-at-apex",
        ),
        pytest.param(
            [],
            [
                change("create", "www.example.test", "A", [IP1]),
                change("create", "www.example.test", "CNAME", ["w.net"]),
            ],
            [("changes[0].type", "stands alone"), ("changes[1].type", "stands alone")],
            id="cname-beside-data-both-from-the-set",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1])],
            [
                change("upsert", "www.example.test", "A", [IP2]),
                change("create", "www.example.test", "CNAME", ["w.net"]),
            ],
            [("changes[0].type", "stands alone"), ("changes[1].type", "stands alone")],
            id="cname-beside-a-stored-rrset-the-set-touches",
        ),
        pytest.param(
            [rrset(WWW, "CNAME", ["w.example.net."])],
            [change("add", "www.example.test", "CNAME", ["v.example.net"])],
            [("changes[0].values", "exactly one")],
            id="cname-with-two-values-via-add",
        ),
        pytest.param(
            [],
            [change("create", "www.example.test", "CNAME", ["a.example.net", "b.example.net"])],
            [("changes[0].values", "exactly one")],
            id="cname-with-two-values",
        ),
        pytest.param(
            [],
            [change("create", "example.test", "NS", ["ns1.other.test"])],
            [("changes[0].name", "apex")],
            id="ns-at-apex",
        ),
        pytest.param(
            [rrset(DELEG, "NS", ["ns1.other.test."])],
            [change("create", "www.deleg.example.test", "A", [IP1])],
            [("changes[0].name", "inside the delegation of deleg.example.test.")],
            id="a-inside-a-stored-delegation",
        ),
        pytest.param(
            [rrset("example.test.", "MX", ["10 mail.example.test."]), rrset("mail.example.test.", "A", [IP1])],
            [
                change("delete", "mail.example.test", "A"),
                change("create", "mail.example.test", "CNAME", ["elsewhere.example.net"]),
            ],
            [("changes[0].name", "needs an A or AAAA"), ("changes[1].type", "cannot be a CNAME")],
            id="a-stored-mx-target-cannot-become-a-cname",
        ),
        pytest.param(
            [rrset("example.test.", "MX", ["10 mail.example.test."]), rrset("mail.example.test.", "A", [IP1])],
            [change("delete", "mail.example.test", "A")],
            [("changes[0].name", "needs an A or AAAA")],
            id="the-address-of-a-stored-mx-target-cannot-go",
        ),
        pytest.param(
            [rrset(DELEG, "NS", ["ns1.other.test."])],
            [change("create", "deleg.example.test", "TXT", ["beside the cut"])],
            [("changes[0].name", "holds only NS and DS")],
            id="data-at-a-delegation-point",
        ),
        pytest.param(
            [rrset(DELEG, "A", [IP1])],
            [change("create", "deleg.example.test", "NS", ["ns1.other.test"])],
            [("changes[0].name", "a delegation point holds only NS and DS")],
            id="delegation-over-existing-data",
        ),
        pytest.param(
            [],
            [
                change("create", "deleg.example.test", "NS", ["ns1.other.test"]),
                change("create", "a.b.deleg.example.test", "TXT", ["hidden"]),
            ],
            [("changes[1].name", "inside the delegation")],
            id="data-deep-inside-a-delegation-of-the-same-set",
        ),
        pytest.param(
            [rrset(DELEG, "NS", ["ns1.deleg.example.test."]), rrset("ns1.deleg.example.test.", "A", [IP1])],
            [change("create", "ns1.deleg.example.test", "TXT", ["not glue"])],
            [("changes[0].name", "inside the delegation")],
            id="non-address-data-at-a-glue-name",
        ),
        pytest.param(
            [],
            [change("create", "deleg.example.test", "NS", ["ns1.deleg.example.test"])],
            [("changes[0].values", "no A or AAAA")],
            id="in-zone-name-server-without-glue",
        ),
        pytest.param(
            [rrset("alias.example.test.", "CNAME", ["mail.example.net."])],
            [change("create", "example.test", "MX", ["10 alias.example.test"])],
            [("changes[0].values", "is a CNAME")],
            id="mx-target-is-a-cname",
        ),
        pytest.param(
            [rrset("alias.example.test.", "CNAME", ["sip.example.net."])],
            [change("create", "_sip._udp.example.test", "SRV", ["10 5 5060 alias.example.test"])],
            [("changes[0].values", "is a CNAME")],
            id="srv-target-is-a-cname",
        ),
        pytest.param(
            [],
            [
                change("create", "alias.example.test", "CNAME", ["ns.example.net"]),
                change("create", "deleg.example.test", "NS", ["alias.example.test"]),
            ],
            [("changes[0].type", "cannot be a CNAME"), ("changes[1].values", "is a CNAME")],
            id="ns-target-is-a-cname-of-the-same-set",
        ),
        pytest.param(
            [],
            [change("create", "example.test", "MX", ["10 mail.example.test", "20 mx.example.net"])],
            [("changes[0].values", "mail.example.test. is in zone example.test. but has no A or AAAA")],
            id="mx-target-in-zone-without-address",
        ),
        pytest.param(
            [],
            [change("create", "host.example.test", "PTR", ["other.example.net"])],
            [("changes[0].type", "reverse zones")],
            id="ptr-outside-a-reverse-zone",
        ),
        pytest.param(
            [],
            [change("create", "_sip.example.test", "SRV", ["10 5 5060 sip.example.net"])],
            [("changes[0].name", "_service._proto")],
            id="srv-owner-without-proto",
        ),
        pytest.param(
            [],
            [change("create", "*.nowild.test", "A", [IP1])],
            [("changes[0].name", "does not allow wildcard")],
            id="wildcard-in-nowild",
        ),
        pytest.param(
            [rrset(WWW, "A", [f"192.0.2.{i}" for i in range(60)])],
            [change("add", "www.example.test", "A", [f"192.0.2.{i}" for i in range(100, 141)])],
            [("changes[0].values", "101 values")],
            id="more-than-100-values-via-add",
        ),
        pytest.param(
            [rrset(WWW, "A", [IP1], ttl=30)],
            [
                change("create", "example.test", "CNAME", ["a.example.net", "b.example.net"]),
                change("add", "www.example.test", "A", [IP2]),
            ],
            [
                ("changes[0].type", "apex"),
                ("changes[0].values", "exactly one"),
                ("changes[1].ttl", "policy"),
            ],
            id="every-broken-rule-reported-together",
        ),
    ],
)
def test_the_rules_refuse(stored: list[RRset], sent: list[ChangeIn], expected: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest) as error:
        plan_v2(state(*stored), *sent, scope=None)

    assert_violations(error, expected)


def test_ns_at_apex_through_v1_names_the_bare_field() -> None:
    with pytest.raises(InvalidRequest) as error:
        plan_v1(state(), change("create", "nowild.test", "NS", ["ns1.other.test"]))

    assert_violations(error, [("name", "apex")])


def test_a_zone_default_ttl_outside_its_policy_is_refused_for_a_new_rrset() -> None:
    registered = {**zones(), 1: zone(EXAMPLE, default_ttl=30)}

    with pytest.raises(InvalidRequest) as error:
        plan_v2(state(registered=registered), change("create", "www.example.test", "A", [IP1]))

    assert_violations(error, [("changes[0].ttl", "30 is outside")])


# A CNAME beside data the change set did not touch is a 409 ----------------------------


@pytest.mark.parametrize(
    ("stored", "sent", "clash"),
    [
        pytest.param(
            [rrset(WWW, "A", [IP1])], change("create", "www.example.test", "CNAME", ["w.example.net"]), "A", id="cname"
        ),
        pytest.param(
            [rrset(WWW, "CNAME", ["w.example.net."])],
            change("add", "www.example.test", "TXT", ["x"]),
            "CNAME",
            id="txt",
        ),
        pytest.param(
            [rrset(WWW, "CNAME", ["w.example.net."])],
            change("upsert", "www.example.test", "AAAA", ["2001:db8::1"]),
            "CNAME",
            id="aaaa",
        ),
        pytest.param(
            [rrset(WWW, "MX", ["10 mx.example.net."]), rrset(WWW, "TXT", ['"x"'])],
            change("create", "www.example.test", "CNAME", ["w.example.net"]),
            "MX",
            id="cname-beside-two-types-names-the-first",
        ),
    ],
)
def test_a_cname_beside_untouched_stored_data_is_a_409_cname_conflict(
    stored: list[RRset], sent: ChangeIn, clash: str
) -> None:
    with pytest.raises(Conflict) as error:
        plan_v2(state(*stored), sent)

    assert error.value.code == "cname_conflict"
    assert f"already holds {clash} records" in error.value.detail


def test_a_cname_conflict_in_v1_is_a_409_too() -> None:
    with pytest.raises(Conflict) as error:
        plan_v1(state(rrset(WWW, "TXT", ['"x"'])), change("create", "www.example.test", "CNAME", ["w.example.net"]))

    assert error.value.code == "cname_conflict"


# Rules on the RRsets a change set does not name ----------------------------------------


def test_a_ptr_in_a_reverse_zone_is_checked_against_that_zone() -> None:
    items = plan_v2(
        state(), change("create", "5.2.0.192.in-addr.arpa", "PTR", ["host.example.test"], ttl=120), scope=REVERSE4
    )

    assert seen(items) == [("5.2.0.192.in-addr.arpa.", "PTR", "create", None, content(120, "host.example.test."))]


def test_a_wildcard_is_checked_against_the_zone_that_holds_it() -> None:
    with pytest.raises(InvalidRequest) as error:
        plan_v1(state(), change("upsert", "*.nowild.test", "TXT", ["x"]))

    assert_violations(error, [("name", f"zone {NOWILD} does not allow wildcard")])


# Known bugs, kept as strict expected failures -----------------------------------------


def test_an_mx_target_in_a_registered_child_zone_is_not_required_in_the_parent() -> None:
    as_plan_loads_it = state(registered=zones(EXAMPLE))  # plan() loads only the zones the operations touch

    items = plan_v2(as_plan_loads_it, change("create", "example.test", "MX", ["10 mail.sub.example.test"]))

    assert len(items) == 1


def test_an_mx_target_below_a_delegation_is_served_by_the_delegated_servers() -> None:
    desired = state(rrset(DELEG, "NS", ["ns1.other.test."]))

    items = plan_v2(desired, change("create", "example.test", "MX", ["10 mail.deleg.example.test"]))

    assert len(items) == 1
