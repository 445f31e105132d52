"""Validation of a record request against in-memory zones: every violation, each with its field."""

from __future__ import annotations

import pytest

from db.models import MAX_TTL, Zone
from db.schemas import RecordCreate
from service.errors import InvalidRequest, Violation
from service.validation import MAX_VALUES, DesiredRRset, validate_record, zone_for_owner


@pytest.fixture
def parent() -> Zone:
    return Zone(
        id=1,
        name="example.test.",
        primary_host="127.0.0.1",
        primary_port=53,
        tsig_key_name="k.",
        min_ttl=60,
        max_ttl=86400,
        default_ttl=3600,
    )


@pytest.fixture
def sub() -> Zone:
    return Zone(
        id=2,
        name="sub.example.test.",
        primary_host="127.0.0.1",
        primary_port=53,
        tsig_key_name="k.",
        min_ttl=30,
        max_ttl=600,
        default_ttl=300,
    )


@pytest.fixture
def zones(parent: Zone, sub: Zone) -> list[Zone]:
    return [parent, sub]


def record(name: str, rtype: str, values: list[str], ttl: int | None = None) -> RecordCreate:
    return RecordCreate(name=name, type=rtype, values=values, ttl=ttl)


def violations_of(rec: RecordCreate, zones: list[Zone]) -> list[Violation]:
    with pytest.raises(InvalidRequest) as info:
        validate_record(rec, zones)
    return info.value.violations


def fields_of(rec: RecordCreate, zones: list[Zone]) -> list[str]:
    return [violation.field for violation in violations_of(rec, zones)]


def test_a_valid_request_gives_the_normalised_rrset_in_its_zone(parent: Zone, zones: list[Zone]) -> None:
    desired = validate_record(record("WWW.Example.Test", "a", ["192.0.2.2", " 192.0.2.1"], ttl=300), zones)
    assert desired == DesiredRRset(
        zone=parent, owner="www.example.test.", rtype="A", ttl=300, values=("192.0.2.1", "192.0.2.2")
    )


def test_the_zone_default_ttl_applies_when_the_request_has_none(parent: Zone, zones: list[Zone]) -> None:
    desired = validate_record(record("www.example.test", "AAAA", ["2001:DB8::1"]), zones)
    assert desired.zone is parent
    assert desired.ttl == 3600
    assert desired.values == ("2001:db8::1",)


def test_the_default_ttl_comes_from_the_zone_that_holds_the_owner(sub: Zone, zones: list[Zone]) -> None:
    desired = validate_record(record("host.sub.example.test.", "A", ["192.0.2.1"]), zones)
    assert desired.zone is sub
    assert desired.ttl == 300


@pytest.mark.parametrize(
    ("owner", "zone_name"),
    [
        ("host.sub.example.test.", "sub.example.test."),
        ("a.b.sub.example.test.", "sub.example.test."),
        ("sub.example.test.", "sub.example.test."),
        ("notsub.example.test.", "example.test."),
        ("www.example.test.", "example.test."),
        ("example.test.", "example.test."),
    ],
)
@pytest.mark.parametrize("reverse", [False, True], ids=["parent-first", "sub-first"])
def test_the_owner_is_placed_in_the_zone_with_the_longest_matching_suffix(
    zones: list[Zone], owner: str, zone_name: str, reverse: bool
) -> None:
    ordered = list(reversed(zones)) if reverse else zones
    desired = validate_record(record(owner, "TXT", ["hello"]), ordered)
    assert desired.zone.name == zone_name
    found = zone_for_owner(owner, ordered)
    assert found is not None
    assert found.name == zone_name


def test_an_owner_outside_every_registered_zone_is_rejected(zones: list[Zone]) -> None:
    assert violations_of(record("www.example.org", "A", ["192.0.2.1"]), zones) == [
        Violation("name", "www.example.org. is not inside any zone registered with Hostmaster")
    ]


def test_a_name_that_only_ends_like_a_zone_is_not_inside_it(zones: list[Zone]) -> None:
    assert fields_of(record("badexample.test", "A", ["192.0.2.1"]), zones) == ["name"]
    assert zone_for_owner("badexample.test.", zones) is None


def test_every_violation_is_reported_together_with_its_field(zones: list[Zone]) -> None:
    rec = record("bad..name.example.test", "A", ["192.0.2.1", "not-an-address", "1.2.3"], ttl=-5)
    with pytest.raises(InvalidRequest) as info:
        validate_record(rec, zones)
    violations = info.value.violations
    assert [v.field for v in violations] == ["name", "values[1]", "values[2]", "ttl"]
    assert "'bad..name.example.test' has an empty label" in violations[0].message
    assert "'not-an-address' is not an IPv4 address" in violations[1].message
    assert "'1.2.3' is not an IPv4 address" in violations[2].message
    assert violations[3].message == f"must be between 0 and {MAX_TTL} seconds"
    assert info.value.detail == "the request is not valid: name, values[1], values[2], ttl"
    assert info.value.code == "invalid"


def test_an_unsupported_type_is_reported_and_its_values_are_not_judged(zones: list[Zone]) -> None:
    violations = violations_of(record("www.example.test", "MX", ["10 mail.example.test."]), zones)
    assert [v.field for v in violations] == ["type"]
    assert violations[0].message == "'MX' is not supported; use one of A, AAAA, CNAME, TXT"


def test_an_unsupported_type_is_reported_together_with_other_violations(zones: list[Zone]) -> None:
    assert fields_of(record("www.example.org", "SRV", [], ttl=10), zones) == ["type", "values", "name"]


def test_the_type_is_accepted_in_any_case_and_with_spaces(zones: list[Zone]) -> None:
    assert validate_record(record("www.example.test", " txt ", ["hi"]), zones).rtype == "TXT"


@pytest.mark.parametrize("ttl", [60, 3600, 86400])
def test_a_ttl_within_the_zone_policy_is_kept(zones: list[Zone], ttl: int) -> None:
    assert validate_record(record("www.example.test", "A", ["192.0.2.1"], ttl=ttl), zones).ttl == ttl


@pytest.mark.parametrize("ttl", [0, 59, 86401, 604800])
def test_a_ttl_outside_the_zone_policy_is_rejected_naming_the_policy(zones: list[Zone], ttl: int) -> None:
    assert violations_of(record("www.example.test", "A", ["192.0.2.1"], ttl=ttl), zones) == [
        Violation("ttl", f"{ttl} is outside zone example.test.'s policy of 60 to 86400 seconds")
    ]


def test_the_ttl_policy_is_that_of_the_zone_holding_the_owner(zones: list[Zone]) -> None:
    assert validate_record(record("host.sub.example.test", "A", ["192.0.2.1"], ttl=30), zones).ttl == 30
    assert violations_of(record("host.sub.example.test", "A", ["192.0.2.1"], ttl=3600), zones) == [
        Violation("ttl", "3600 is outside zone sub.example.test.'s policy of 30 to 600 seconds")
    ]


@pytest.mark.parametrize("ttl", [-1, MAX_TTL + 1, 2**40])
def test_a_ttl_outside_the_dns_range_gives_one_violation_not_two(zones: list[Zone], ttl: int) -> None:
    assert violations_of(record("www.example.test", "A", ["192.0.2.1"], ttl=ttl), zones) == [
        Violation("ttl", f"must be between 0 and {MAX_TTL} seconds")
    ]


def test_a_cname_at_the_zone_apex_is_rejected(zones: list[Zone]) -> None:
    assert violations_of(record("example.test.", "CNAME", ["target.other.test"]), zones) == [
        Violation("type", "a CNAME cannot be at the zone apex example.test. (RFC 1912 §2.4)")
    ]


def test_a_cname_at_the_apex_of_a_sub_zone_is_rejected(zones: list[Zone], parent: Zone) -> None:
    assert fields_of(record("sub.example.test", "CNAME", ["target.other.test"]), zones) == ["type"]
    # Without the sub-zone registered, the same name is an ordinary name in the parent.
    desired = validate_record(record("sub.example.test", "CNAME", ["target.other.test"]), [parent])
    assert desired.values == ("target.other.test.",)


def test_a_cname_below_the_apex_is_accepted_with_an_absolute_target(zones: list[Zone]) -> None:
    desired = validate_record(record("www.example.test", "CNAME", ["Target.Other.Test"]), zones)
    assert desired.owner == "www.example.test."
    assert desired.values == ("target.other.test.",)


def test_a_cname_with_two_values_is_rejected(zones: list[Zone]) -> None:
    assert violations_of(record("www.example.test", "CNAME", ["a.other.test", "b.other.test"]), zones) == [
        Violation("values", "a CNAME has exactly one value (RFC 2181 §10.1)")
    ]


@pytest.mark.parametrize(
    ("rtype", "values", "repeated"),
    [
        ("A", ["192.0.2.1", " 192.0.2.1 "], "192.0.2.1"),
        ("AAAA", ["2001:db8::1", "2001:DB8:0:0:0:0:0:1"], "2001:db8::1"),
        ("TXT", ["hello", '"hello"'], '"hello"'),
        ("TXT", ['"a" "b"', '"a""b"'], '"a" "b"'),
    ],
)
def test_values_that_repeat_after_normalisation_are_rejected(
    zones: list[Zone], rtype: str, values: list[str], repeated: str
) -> None:
    assert violations_of(record("www.example.test", rtype, values), zones) == [
        Violation("values[1]", f"repeats {repeated}; an RRset holds each value once")
    ]


def test_a_request_without_values_is_rejected(zones: list[Zone]) -> None:
    assert violations_of(record("www.example.test", "A", []), zones) == [
        Violation("values", "must hold at least one value")
    ]


def test_a_request_with_too_many_values_is_rejected(zones: list[Zone]) -> None:
    values = [f"192.0.2.{i}" for i in range(MAX_VALUES + 1)]
    assert violations_of(record("www.example.test", "A", values), zones) == [
        Violation("values", f"holds {MAX_VALUES + 1} values; the limit is {MAX_VALUES}")
    ]


def test_the_most_values_allowed_are_accepted(zones: list[Zone]) -> None:
    values = [f"192.0.2.{i}" for i in range(MAX_VALUES)]
    assert len(validate_record(record("www.example.test", "A", values), zones).values) == MAX_VALUES


@pytest.mark.parametrize("rtype", ["TXT", "CNAME"])
def test_underscore_owners_are_accepted_for_txt_and_cname(zones: list[Zone], rtype: str) -> None:
    value = "token" if rtype == "TXT" else "target.other.test"
    desired = validate_record(record("_acme-challenge.www.example.test", rtype, [value]), zones)
    assert desired.owner == "_acme-challenge.www.example.test."


@pytest.mark.parametrize("rtype", ["A", "AAAA"])
def test_underscore_owners_are_rejected_for_address_records(zones: list[Zone], rtype: str) -> None:
    value = "192.0.2.1" if rtype == "A" else "2001:db8::1"
    violations = violations_of(record("_acme-challenge.example.test", rtype, [value]), zones)
    assert [v.field for v in violations] == ["name"]
    assert "underscore labels are not allowed" in violations[0].message


def test_a_wildcard_owner_is_accepted(zones: list[Zone]) -> None:
    assert validate_record(record("*.example.test", "A", ["192.0.2.1"]), zones).owner == "*.example.test."


def test_no_zone_registered_rejects_every_owner() -> None:
    assert fields_of(record("www.example.test", "A", ["192.0.2.1"]), []) == ["name"]
