"""Properties of the validators, for any input: nothing but our own error escapes, and
normalising twice equals normalising once. `make test-fuzz` runs many more examples."""

from __future__ import annotations

import ipaddress
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.errors import InvalidRequest
from service.dns.names import BadName, normalize_name
from service.dns.rdata import SUPPORTED_TYPES, BadValue, normalize_value
from service.requests.payloads import parse_json_body, storable

settings.register_profile("default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

LABEL = st.from_regex(r"[A-Za-z0-9_*-]{0,70}", fullmatch=True)
NAMEISH = st.one_of(
    st.text(max_size=300),
    st.lists(LABEL, min_size=1, max_size=8).map(".".join),
    st.lists(LABEL, min_size=1, max_size=8).map(lambda labels: ".".join(labels) + "."),
)
VALUEISH = st.one_of(
    st.text(max_size=400),
    st.from_regex(r"[0-9a-fA-F:.]{1,45}", fullmatch=True),
    st.from_regex(r"[0-9]{1,6} [0-9]{1,6} [0-9]{1,6} [a-z0-9.\-]{1,40}", fullmatch=True),
    st.from_regex(r'[0-9]{1,3} (issue|issuewild|iodef|tbs) "?[ -~]{0,40}"?', fullmatch=True),
    st.from_regex(r'"[ -~]{0,300}"( "[ -~]{0,20}")?', fullmatch=True),
)


@given(NAMEISH, st.booleans(), st.booleans())
def test_a_name_is_normalised_or_refused_and_normalising_again_changes_nothing(
    text: str, underscore: bool, wildcard: bool
) -> None:
    try:
        name = normalize_name(text, allow_underscore=underscore, allow_wildcard=wildcard)
    except BadName:
        return
    assert name.endswith(".")
    assert len(name) <= 254
    assert normalize_name(name, allow_underscore=underscore, allow_wildcard=wildcard) == name


@pytest.mark.parametrize("rtype", SUPPORTED_TYPES)
@given(value=VALUEISH)
def test_a_value_is_normalised_or_refused_and_normalising_again_changes_nothing(rtype: str, value: str) -> None:
    try:
        stored = normalize_value(rtype, value)
    except BadValue as exc:
        assert len(str(exc)) < 400  # noqa: PT017 - a message, not the input echoed whole
        return
    assert normalize_value(rtype, stored) == stored


JSONISH = st.one_of(
    st.binary(max_size=2000),
    st.recursive(
        st.sampled_from(["1", "-0.5", "1e999", "NaN", "Infinity", "null", "true", '"x"', '"\\u0000"', '"\\ud800"']),
        lambda inner: (
            st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
            | st.lists(inner, max_size=4).map(
                lambda items: "{" + ",".join(f'"k{i}":{v}' for i, v in enumerate(items)) + "}"
            )
        ),
        max_leaves=60,
    ).map(str.encode),
    st.integers(min_value=1, max_value=200).map(lambda depth: b"[" * depth + b"]" * depth),
)


# What must be accepted, so that the properties above cannot pass by refusing everything.
HOSTNAME_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
TOP_LABEL = st.from_regex(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)  # not all digits (RFC 1123 §2.1)
HOSTNAME = st.builds(
    lambda labels, top: ".".join([*labels, top]), st.lists(HOSTNAME_LABEL, max_size=3), TOP_LABEL
).filter(lambda name: len(name) <= 250)


@given(HOSTNAME, st.booleans())
def test_every_host_name_of_rfc_1123_is_accepted_and_kept_as_sent(name: str, dot: bool) -> None:
    assert normalize_name(name + ("." if dot else "")) == name + "."


@given(st.ip_addresses(v=4))
def test_every_ipv4_address_is_accepted_as_an_a_value(address: object) -> None:
    assert normalize_value("A", str(address)) == str(address)


@given(st.ip_addresses(v=6))
def test_every_ipv6_address_is_accepted_as_an_aaaa_value_the_same_address(address: ipaddress.IPv6Address) -> None:
    stored = normalize_value("AAAA", str(address))
    assert ipaddress.ip_address(stored) == address  # in RFC 5952 form; IPv4-mapped ones with the dotted quad
    assert normalize_value("AAAA", stored) == stored


@given(st.integers(0, 65535), HOSTNAME)
def test_every_mx_of_a_preference_and_a_host_is_accepted(preference: int, host: str) -> None:
    assert normalize_value("MX", f"{preference} {host}") == f"{preference} {host}."


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=200))
def test_every_printable_text_is_accepted_as_a_txt_value(text: str) -> None:
    stored = normalize_value("TXT", f'"{text.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"')
    assert normalize_value("TXT", stored) == stored


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)


@given(JSON_VALUE)
def test_every_json_value_of_finite_numbers_is_parsed_as_json_reads_it(value: object) -> None:
    assert parse_json_body(json.dumps(value).encode()) == json.loads(json.dumps(value))


@given(JSONISH)
def test_a_body_is_parsed_or_refused_with_our_error(body: bytes) -> None:
    try:
        parsed = parse_json_body(body)
    except InvalidRequest as exc:
        assert exc.violations[0].field == "body"  # noqa: PT017 - the property is about every input
        return
    assert "Infinity" not in json.dumps(parsed)  # what parses can be stored: finite numbers only
    assert "NaN" not in json.dumps(parsed)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=20,
    )
)
def test_what_is_stored_holds_no_nul_and_no_lone_surrogate(value: object) -> None:
    stored = storable(value)

    def strings(item: object) -> list[str]:
        if isinstance(item, str):
            return [item]
        if isinstance(item, dict):
            return [part for key, child in item.items() for part in strings(key) + strings(child)]
        if isinstance(item, list):
            return [part for child in item for part in strings(child)]
        return []

    for string in strings(stored):
        assert "\x00" not in string
        assert not any("\ud800" <= ch <= "\udfff" for ch in string)
