"""Record values: what a client may send for each type, and the canonical form that is stored."""

from __future__ import annotations

import pytest
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.TXT import TXT

from service.dns.rdata import (
    MAX_TXT_OCTETS,
    TXT_STRING_OCTETS,
    BadValue,
    normalize_value,
    to_rdata,
    txt_text,
)


def txt_strings(stored: str) -> list[bytes]:
    rdata = to_rdata("TXT", stored)
    assert isinstance(rdata, TXT)
    return list(rdata.strings)


# A ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        (" 192.0.2.10 ", "192.0.2.10"),
    ],
)
def test_an_ipv4_address_is_stored_in_dotted_quad_form(value: str, stored: str) -> None:
    assert normalize_value("A", value) == stored


@pytest.mark.parametrize(
    "value",
    [
        "1.2.3",  # a short form inet_aton would take as 1.2.0.3
        "01.2.3.4",  # a leading zero some parsers read as octal
        "192.0.2.010",
        "0x1.2.3.4",
        "1.2.3.256",
        "1.2.3.4.5",
        "192.0.2.1.",
        "192.0.2.1/32",
        "3232235777",
        "::1",
        "www.example.test",
        "",
    ],
)
def test_an_a_value_that_is_not_a_plain_dotted_quad_is_rejected(value: str) -> None:
    with pytest.raises(BadValue, match="is not an IPv4 address in dotted-quad form") as info:
        normalize_value("A", value)
    assert repr(value) in str(info.value)


# AAAA ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("::1", "::1"),
        (" 2001:db8::a ", "2001:db8::a"),
    ],
)
def test_an_ipv6_address_is_stored_compressed_and_lower_case(value: str, stored: str) -> None:
    assert normalize_value("AAAA", value) == stored


@pytest.mark.parametrize("value", ["fe80::1%eth0", "fe80::1%1", "2001:db8::1%0"])
def test_an_ipv6_address_with_a_zone_index_is_rejected(value: str) -> None:
    with pytest.raises(BadValue, match=r"has a zone index \(%\.\.\.\), which DNS cannot carry"):
        normalize_value("AAAA", value)


@pytest.mark.parametrize("value", ["192.0.2.1", "2001:db8::g", "2001:db8:::1", "1:2:3:4:5:6:7:8:9", "", "[::1]"])
def test_an_aaaa_value_that_is_not_an_ipv6_address_is_rejected(value: str) -> None:
    with pytest.raises(BadValue, match="is not an IPv6 address"):
        normalize_value("AAAA", value)


# CNAME --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("Target.Other.TEST", "target.other.test."),
        ("target.other.test.", "target.other.test."),
        ("_dmarc.example.test", "_dmarc.example.test."),
    ],
)
def test_a_cname_target_is_stored_absolute_lower_case_with_the_dot(value: str, stored: str) -> None:
    assert normalize_value("CNAME", value) == stored


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("bad..name", "target has an empty label"),
        ("*.example.test", r"target may have a wildcard '\*' only"),
        ("-bad.example.test", "target has the label '-bad'"),
        ("bücher.example.test", "target must be ASCII"),
        ("", "target must not be empty"),
    ],
)
def test_a_cname_target_that_is_not_a_name_is_rejected_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(BadValue, match=reason):
        normalize_value("CNAME", value)


def test_a_stored_cname_target_becomes_an_absolute_rdata() -> None:
    rdata = to_rdata("CNAME", normalize_value("CNAME", "target.other.test"))
    assert isinstance(rdata, CNAME)
    assert rdata.target.is_absolute()
    assert rdata.target.to_text() == "target.other.test."


# TXT ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("hello world", '"hello world"'),
        ("v=spf1 -all", '"v=spf1 -all"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ('x"y', '"x\\"y"'),
        ("tab\there", '"tab\\009here"'),
        (" padded ", '" padded "'),
        ("é", '"\\195\\169"'),
    ],
)
def test_literal_txt_text_is_stored_quoted_with_quotes_and_backslashes_escaped(value: str, stored: str) -> None:
    assert normalize_value("TXT", value) == stored


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ('"v=spf1 -all"', '"v=spf1 -all"'),
        ('"a" "b"', '"a" "b"'),
        ('"a""b"', '"a" "b"'),
        ('"a" b', '"a" "b"'),
        ('"say \\"hi\\""', '"say \\"hi\\""'),
        ('"\\007"', '"\\007"'),
        ('"\\195\\169"', '"\\195\\169"'),
        ('""', '""'),
    ],
)
def test_txt_starting_with_a_double_quote_is_read_as_presentation_format(value: str, stored: str) -> None:
    assert normalize_value("TXT", value) == stored


def test_presentation_format_keeps_its_character_strings_apart() -> None:
    assert txt_strings(normalize_value("TXT", '"first" "second"')) == [b"first", b"second"]


@pytest.mark.parametrize("value", ['"unterminated', '"a" "b', '"' + "x" * 256 + '"'])
def test_invalid_presentation_format_is_rejected_with_a_hint_about_literal_text(value: str) -> None:
    hint = r"is not valid presentation format \(.+\); to send literal text, do not start it with a quote"
    with pytest.raises(BadValue, match=hint):
        normalize_value("TXT", value)


def test_literal_txt_longer_than_255_octets_is_split_into_255_octet_strings() -> None:
    strings = txt_strings(normalize_value("TXT", "x" * 600))
    assert [len(s) for s in strings] == [255, 255, 90]
    assert b"".join(strings) == b"x" * 600


def test_literal_txt_of_exactly_255_octets_stays_one_string() -> None:
    assert txt_strings(normalize_value("TXT", "y" * TXT_STRING_OCTETS)) == [b"y" * TXT_STRING_OCTETS]


@pytest.mark.parametrize(
    "value",
    [
        "é" * 200,  # two octets each: octet 255 is the middle of a character
        "€" * 100,  # three octets each
        "a" + "€" * 100,
        "ab" + "😀" * 80,  # four octets each
        "x" * 254 + "é" + "y" * 10,  # the cut falls right inside the one multi-octet character
    ],
)
def test_splitting_long_txt_never_cuts_a_utf8_character(value: str) -> None:
    strings = txt_strings(normalize_value("TXT", value))
    assert len(strings) > 1
    assert all(0 < len(s) <= TXT_STRING_OCTETS for s in strings)
    assert "".join(s.decode("utf-8") for s in strings) == value  # each string decodes on its own


@pytest.mark.parametrize(
    "value",
    ["line\nbreak", "nul\x00", "\x1b[31mred", "bell\x07", "del\x7f", "cr\r", '"quoted\nnewline"'],
)
def test_txt_with_control_characters_is_rejected(value: str) -> None:
    with pytest.raises(BadValue, match="must not contain control characters"):
        normalize_value("TXT", value)


def test_empty_literal_txt_is_rejected() -> None:
    with pytest.raises(BadValue, match="must not be empty"):
        normalize_value("TXT", "")


def test_txt_of_exactly_the_size_limit_is_accepted() -> None:
    strings = txt_strings(normalize_value("TXT", "z" * MAX_TXT_OCTETS))
    assert sum(len(s) for s in strings) == MAX_TXT_OCTETS


@pytest.mark.parametrize(
    ("value", "octets"),
    [
        ("z" * (MAX_TXT_OCTETS + 1), MAX_TXT_OCTETS + 1),
        ("é" * 2001, 4002),  # 2001 characters but 4002 octets
        (" ".join(['"' + "q" * 255 + '"'] * 16), 16 * 255),
    ],
)
def test_txt_over_the_size_limit_is_rejected_with_its_size_in_octets(value: str, octets: int) -> None:
    with pytest.raises(BadValue, match=f"is {octets} octets long; the limit is {MAX_TXT_OCTETS}"):
        normalize_value("TXT", value)


@pytest.mark.parametrize(
    "value",
    [
        "hello world",
        'say "hi" \\ back',
        "tab\there",
        "é" * 200,
        "a" + "€" * 100,
        "x" * 1000,
        "_acme challenge token: 3q2+7w==",
        " leading and trailing spaces ",
    ],
)
def test_txt_text_returns_the_literal_text_the_client_sent(value: str) -> None:
    assert txt_text(normalize_value("TXT", value)) == value


def test_txt_text_joins_the_strings_of_presentation_format() -> None:
    assert txt_text(normalize_value("TXT", '"v=DKIM1; " "p=abc"')) == "v=DKIM1; p=abc"


# Every type ---------------------------------------------------------------------------

IDEMPOTENCE_SAMPLES = [
    ("A", "192.0.2.1"),
    ("A", " 198.51.100.7 "),
    ("AAAA", "2001:DB8:0:0:0:0:0:1"),
    ("AAAA", "::"),
    ("AAAA", "::ffff:192.0.2.1"),
    ("CNAME", "Target.Other.Test"),
    ("CNAME", "_dmarc.example.test."),
    ("TXT", "hello world"),
    ("TXT", 'say "hi" \\ back'),
    ("TXT", "tab\there"),
    ("TXT", "é" * 200),
    ("TXT", "x" * MAX_TXT_OCTETS),
    ("TXT", '"a""b"'),
    ("TXT", '"\\007"'),
    ("TXT", '""'),
]


@pytest.mark.parametrize(("rtype", "value"), IDEMPOTENCE_SAMPLES)
def test_normalising_a_stored_value_returns_it_unchanged(rtype: str, value: str) -> None:
    once = normalize_value(rtype, value)
    assert normalize_value(rtype, once) == once


ROUND_TRIP_SAMPLES = IDEMPOTENCE_SAMPLES


def test_an_ipv4_mapped_address_is_stored_as_dnspython_writes_it() -> None:
    assert normalize_value("AAAA", "::FFFF:C000:0201") == "::ffff:192.0.2.1"


@pytest.mark.parametrize(("rtype", "value"), ROUND_TRIP_SAMPLES)
def test_a_stored_value_round_trips_through_its_rdata(rtype: str, value: str) -> None:
    stored = normalize_value(rtype, value)
    assert to_rdata(rtype, stored).to_text() == stored


@pytest.mark.parametrize("rtype", ["a", "mx", "SOA", "DS", "ANY"])
def test_an_unsupported_type_is_rejected(rtype: str) -> None:
    with pytest.raises(BadValue, match=f"type {rtype} is not supported"):
        normalize_value(rtype, "192.0.2.1")


def test_a_value_that_is_not_a_string_is_rejected() -> None:
    with pytest.raises(BadValue, match="must be a string"):
        normalize_value("A", 3232235777)  # type: ignore[arg-type]
