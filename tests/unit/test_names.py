"""Owner names, zone names and CNAME targets as Hostmaster accepts and stores them."""

from __future__ import annotations

import pytest

from service.dns.names import (
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    UNDERSCORE_OWNER_TYPES,
    BadName,
    is_within,
    normalize_name,
)

# 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters without the trailing dot.
LONGEST_NAME = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("www.example.test", "www.example.test."),
        ("www.example.test.", "www.example.test."),
        ("WWW.Example.TEST", "www.example.test."),
        ("Host-01.Example.Test.", "host-01.example.test."),
        ("a--b.example.test", "a--b.example.test."),
        ("xn--bcher-kva.example.test", "xn--bcher-kva.example.test."),
        ("123.example.test", "123.example.test."),
        ("1.2.3.4", "1.2.3.4."),
        ("test", "test."),
        ("a", "a."),
    ],
)
def test_a_valid_name_is_stored_absolute_lower_case_with_the_trailing_dot(text: str, stored: str) -> None:
    assert normalize_name(text) == stored


def test_the_trailing_dot_is_optional_and_gives_the_same_name() -> None:
    assert normalize_name("mail.example.test") == normalize_name("mail.example.test.")


def test_normalising_a_stored_name_returns_it_unchanged() -> None:
    stored = normalize_name("Mail.Example.Test")
    assert normalize_name(stored) == stored


def test_a_label_of_63_octets_is_accepted() -> None:
    label = "x" * MAX_LABEL_LENGTH
    assert normalize_name(f"{label}.example.test") == f"{label}.example.test."


def test_a_label_of_64_octets_is_rejected_with_its_length() -> None:
    with pytest.raises(BadName, match="has a label of 64 characters; the limit is 63"):
        normalize_name("x" * 64 + ".example.test")


def test_a_name_of_253_characters_is_accepted_with_or_without_the_trailing_dot() -> None:
    assert len(LONGEST_NAME) == MAX_NAME_LENGTH
    assert normalize_name(LONGEST_NAME) == LONGEST_NAME + "."
    assert normalize_name(LONGEST_NAME + ".") == LONGEST_NAME + "."


def test_a_name_of_254_characters_is_rejected_with_its_length() -> None:
    too_long = LONGEST_NAME + "d"
    with pytest.raises(BadName, match="is 254 characters long; the limit is 253"):
        normalize_name(too_long)


@pytest.mark.parametrize("text", ["", "."])
def test_the_empty_name_and_the_root_say_so(text: str) -> None:
    with pytest.raises(BadName, match="must not be empty or the root"):
        normalize_name(text)


@pytest.mark.parametrize(
    "text",
    ["www..example.test", ".example.test", "example.test..", "..", "a...b"],
)
def test_an_empty_label_is_rejected(text: str) -> None:
    with pytest.raises(BadName, match="has an empty label"):
        normalize_name(text)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("-www.example.test", "-www"),
        ("www-.example.test", "www-"),
        ("www.-example.test", "-example"),
        ("-.example.test", "-"),
        ("ww w.example.test", "ww w"),
        ("www.exa_mple.test", "exa_mple"),
        ("www!.example.test", "www!"),
        ("host/1.example.test", "host/1"),
        ("*www.example.test", "*www"),
        ("w*.example.test", "w*"),
    ],
)
def test_a_label_that_is_not_letters_digits_and_hyphens_is_rejected_and_named(text: str, label: str) -> None:
    with pytest.raises(BadName, match="use letters, digits and hyphens, not starting or ending with a hyphen") as info:
        normalize_name(text)
    assert repr(label) in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["_acme-challenge.example.test", "_sip._tcp.example.test", "_dmarc.example.test", "_25._tcp.mail.example.test"],
)
def test_underscore_labels_are_accepted_only_when_the_caller_allows_them(text: str) -> None:
    assert normalize_name(text, allow_underscore=True) == text + "."
    with pytest.raises(BadName, match="underscore labels are not allowed for this record type"):
        normalize_name(text)


@pytest.mark.parametrize("text", ["_.example.test", "__acme.example.test", "_-x.example.test", "_acme-.example.test"])
def test_a_malformed_underscore_label_is_rejected_even_when_underscores_are_allowed(text: str) -> None:
    with pytest.raises(BadName, match="use letters, digits and hyphens"):
        normalize_name(text, allow_underscore=True)


def test_an_underscore_inside_a_label_is_rejected_even_when_underscores_are_allowed() -> None:
    with pytest.raises(BadName, match="'host_name'"):
        normalize_name("host_name.example.test", allow_underscore=True)


def test_a_wildcard_leftmost_label_is_accepted_when_allowed() -> None:
    assert normalize_name("*.example.test", allow_wildcard=True) == "*.example.test."
    assert normalize_name("*.Example.Test.", allow_wildcard=True) == "*.example.test."


def test_a_wildcard_is_rejected_when_not_allowed() -> None:
    with pytest.raises(BadName, match=r"wildcard '\*' only as its whole leftmost label"):
        normalize_name("*.example.test")


@pytest.mark.parametrize("text", ["www.*.example.test", "www.example.*", "*.*.example.test"])
def test_a_wildcard_that_is_not_the_leftmost_label_is_rejected(text: str) -> None:
    with pytest.raises(BadName, match=r"wildcard '\*' only as its whole leftmost label"):
        normalize_name(text, allow_wildcard=True)


@pytest.mark.parametrize(
    "text",
    ["www\x00.example.test", "www.example.test\n", "\twww.example.test", "www\x7f.example.test", "a\rb.test"],
)
def test_control_characters_are_rejected(text: str) -> None:
    with pytest.raises(BadName, match="must not contain control characters"):
        normalize_name(text)


@pytest.mark.parametrize("text", ["bücher.example.test", "www.exämple.test", "пример.test", "www.example.test\u00a0"])
def test_a_non_ascii_name_is_rejected_with_a_hint_to_use_the_a_label(text: str) -> None:
    with pytest.raises(BadName, match=r"A-label \(xn--\) form"):
        normalize_name(text)


@pytest.mark.parametrize("text", [" www.example.test", "www.example.test ", " www.example.test. ", "  "])
def test_leading_or_trailing_spaces_are_rejected(text: str) -> None:
    with pytest.raises(BadName, match="must not have leading or trailing spaces"):
        normalize_name(text)


def test_a_name_that_is_not_a_string_is_rejected() -> None:
    with pytest.raises(BadName, match="must be a string"):
        normalize_name(42)  # type: ignore[arg-type]


def test_bad_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="empty label"):
        normalize_name("a..b")


@pytest.mark.parametrize(
    ("name", "zone", "inside"),
    [
        ("example.test.", "example.test.", True),
        ("www.example.test.", "example.test.", True),
        ("a.b.c.example.test.", "example.test.", True),
        ("*.example.test.", "example.test.", True),
        ("badexample.test.", "example.test.", False),
        ("example.test.", "www.example.test.", False),
        ("test.", "example.test.", False),
        ("www.example.org.", "example.test.", False),
        ("www.example.test.evil.", "example.test.", False),
    ],
)
def test_is_within_is_true_for_the_zone_itself_and_names_below_it_only(name: str, zone: str, inside: bool) -> None:
    assert is_within(name, zone) is inside


def test_underscore_owner_names_are_for_txt_cname_and_srv() -> None:
    assert frozenset({"TXT", "CNAME", "SRV"}) == UNDERSCORE_OWNER_TYPES
    for rtype in UNDERSCORE_OWNER_TYPES:
        owner = normalize_name("_sip._tcp.example.test", allow_underscore=rtype in UNDERSCORE_OWNER_TYPES)
        assert owner == "_sip._tcp.example.test."
    with pytest.raises(BadName, match="underscore labels are not allowed"):
        normalize_name("_sip._tcp.example.test", allow_underscore="MX" in UNDERSCORE_OWNER_TYPES)
