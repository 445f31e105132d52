"""Record values of every supported type: good input and its stored text, bad input and why.

Each good case is ``(type, what a client sends, what is stored)``; each bad case is
``(type, what a client sends, a word the message must hold)``. The stored text is what
dnspython prints for the value, so it is also what a server is compared with.
"""

from __future__ import annotations

import random
import time

import pytest

from service.dns.rdata import MAX_CAA_VALUE_OCTETS, SUPPORTED_TYPES, BadValue, normalize_value, to_rdata, value_target

GOOD: list[tuple[str, str, str]] = [
    # A, AAAA
    ("A", "192.0.2.1", "192.0.2.1"),
    ("A", " 203.0.113.9 ", "203.0.113.9"),
    ("A", "0.0.0.0", "0.0.0.0"),
    ("AAAA", "2001:DB8::1", "2001:db8::1"),
    ("AAAA", "2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),
    ("AAAA", "2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
    ("AAAA", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
    ("AAAA", "::ffff:c000:201", "::ffff:192.0.2.1"),
    ("AAAA", "2001:db8::", "2001:db8::"),
    # CNAME
    ("CNAME", "Target.Example.Test", "target.example.test."),
    ("CNAME", "target.example.test.", "target.example.test."),
    ("CNAME", "_acme-challenge.example.net", "_acme-challenge.example.net."),
    # TXT
    ("TXT", "v=spf1 mx -all", '"v=spf1 mx -all"'),
    ("TXT", "a;b", '"a;b"'),
    ("TXT", '"a;b"', '"a;b"'),
    ("TXT", '"a" "b"', '"a" "b"'),
    ("TXT", "tab\there", '"tab\\009here"'),
    ("TXT", "é", '"\\195\\169"'),
    # MX
    ("MX", "10 mail.example.test", "10 mail.example.test."),
    ("MX", "10 mail.example.test.", "10 mail.example.test."),
    ("MX", "0 Mail.Example.TEST", "0 mail.example.test."),
    ("MX", "65535 mx.example.test", "65535 mx.example.test."),
    ("MX", "010 mx.example.test", "10 mx.example.test."),
    ("MX", "  20   mx2.example.test  ", "20 mx2.example.test."),
    ("MX", "0 .", "0 ."),
    ("MX", "00 .", "0 ."),
    ("MX", "5 mx", "5 mx."),
    ("MX", "10 xn--bcher-kva.example.test", "10 xn--bcher-kva.example.test."),
    ("MX", "10 a1.b2", "10 a1.b2."),
    ("MX", "10 mx-1.example.test", "10 mx-1.example.test."),
    # SRV
    ("SRV", "10 60 5060 sip.example.test", "10 60 5060 sip.example.test."),
    ("SRV", "0 0 0 .", "0 0 0 ."),
    ("SRV", "10 0 0 .", "10 0 0 ."),
    ("SRV", "65535 65535 65535 x.example.test", "65535 65535 65535 x.example.test."),
    ("SRV", "1 2 443 Web.Example.Test.", "1 2 443 web.example.test."),
    ("SRV", "0 5 5269 xmpp-server.example.test", "0 5 5269 xmpp-server.example.test."),
    ("SRV", " 01  002 0443 web.example.test ", "1 2 443 web.example.test."),
    # PTR
    ("PTR", "host.example.test", "host.example.test."),
    ("PTR", "HOST.example.test.", "host.example.test."),
    ("PTR", " host.example.test ", "host.example.test."),
    ("PTR", "1.2.0.192.in-addr.arpa", "1.2.0.192.in-addr.arpa."),
    # NS
    ("NS", "ns1.example.test", "ns1.example.test."),
    ("NS", "NS1.Example.Net.", "ns1.example.net."),
    ("NS", "a.iana-servers.net", "a.iana-servers.net."),
    ("NS", "ns", "ns."),
    # CAA: issue, issuewild
    ("CAA", '0 issue "letsencrypt.org"', '0 issue "letsencrypt.org"'),
    ("CAA", "0 issue letsencrypt.org", '0 issue "letsencrypt.org"'),
    ("CAA", '0 ISSUE "LetsEncrypt.org"', '0 issue "LetsEncrypt.org"'),
    ("CAA", '128 issue "ca.example.test"', '128 issue "ca.example.test"'),
    ("CAA", '0 issuewild ";"', '0 issuewild ";"'),
    ("CAA", "0 issue ;", '0 issue ";"'),
    ("CAA", '0 issue ""', '0 issue ""'),
    ("CAA", "0 IssueWild ca.example.test", '0 issuewild "ca.example.test"'),
    (
        "CAA",
        '0 issue "ca.example.test; accounturi=https://ca.example.test/acct/1"',
        '0 issue "ca.example.test; accounturi=https://ca.example.test/acct/1"',
    ),
    (
        "CAA",
        '0 issue "ca.example.test;validationmethods=dns-01"',
        '0 issue "ca.example.test;validationmethods=dns-01"',
    ),
    ("CAA", '0 issue "ca.example.test; a=1; b=2"', '0 issue "ca.example.test; a=1; b=2"'),
    ("CAA", '0 issue "ca.example.test ; a = b"', '0 issue "ca.example.test ; a = b"'),
    ("CAA", '0 issue "; key=value"', '0 issue "; key=value"'),
    ("CAA", '0 issue "ca.example.test;"', '0 issue "ca.example.test;"'),
    ("CAA", '0 issue "ca.example.test; a="', '0 issue "ca.example.test; a="'),
    ("CAA", '0 issue "ca.example.test"   ', '0 issue "ca.example.test"'),
    ("CAA", '   0   issue   "ca.example.test"', '0 issue "ca.example.test"'),
    # CAA: iodef
    ("CAA", '0 iodef "mailto:security@example.test"', '0 iodef "mailto:security@example.test"'),
    ("CAA", "0 iodef mailto:security@example.test", '0 iodef "mailto:security@example.test"'),
    ("CAA", '0 iodef "MAILTO:sec@example.test"', '0 iodef "MAILTO:sec@example.test"'),
    ("CAA", '0 iodef "https://iodef.example.test/report"', '0 iodef "https://iodef.example.test/report"'),
    ("CAA", '0 iodef "http://iodef.example.test:8080/r?x=1"', '0 iodef "http://iodef.example.test:8080/r?x=1"'),
    # CAA: other tags
    ("CAA", '0 tbs "Unknown"', '0 tbs "Unknown"'),
    ("CAA", '128 tbs "with spaces and \\"quotes\\""', '128 tbs "with spaces and \\"quotes\\""'),
    ("CAA", '0 contactemail "hostmaster@example.test"', '0 contactemail "hostmaster@example.test"'),
    ("CAA", '0 caa123456789012 "x"', '0 caa123456789012 "x"'),
    ("CAA", '0 tbs "\\195\\169"', '0 tbs "\\195\\169"'),
    ("CAA", '0 tbs "é"', '0 tbs "\\195\\169"'),
    ("CAA", "255 tbs x", '255 tbs "x"'),
    ("CAA", '0 tbs \\"x', '0 tbs "\\"x"'),
    ("CAA", '0 tbs "back\\\\slash"', '0 tbs "back\\\\slash"'),
    ("CAA", '0 tbs "\\a\\b"', '0 tbs "ab"'),
    ("CAA", '0 tbs ""', '0 tbs ""'),
]

BAD: list[tuple[str, str, str]] = [
    # A, AAAA, CNAME, TXT: the rules every type shares reach these too
    ("A", "192.0.2.1\n", "control"),
    ("A", "1.2.3", "IPv4"),
    ("A", "", "IPv4"),
    ("AAAA", "fe80::1%eth0", "zone index"),
    ("AAAA", "2001:db8::1\x00", "control"),
    ("AAAA", "192.0.2.1", "IPv6"),
    ("CNAME", "*.example.test", "wildcard"),
    ("CNAME", "a..b", "empty label"),
    ("CNAME", "\ud800.example.test", "surrogate"),
    ("CNAME", "target.example.test\x7f", "control"),
    ("TXT", "", "empty"),
    ("TXT", "a\nb", "control"),
    ("TXT", '"a" ;comment', "comment"),
    ("TXT", '"a" "b;c" ;d', "comment"),
    ("TXT", '"unterminated', "presentation"),
    ("TXT", "x\ud83d", "surrogate"),
    # MX
    ("MX", "", "empty"),
    ("MX", "   ", "empty"),
    ("MX", "10", "1 field"),
    ("MX", "mail.example.test", "1 field"),
    ("MX", "10 mail.example.test extra", "3 fields"),
    ("MX", "10 mail.example.test. ; comment", "4 fields"),
    ("MX", "-1 mail.example.test", "whole number"),
    ("MX", "+10 mail.example.test", "whole number"),
    ("MX", "1.5 mail.example.test", "whole number"),
    ("MX", "1e3 mail.example.test", "whole number"),
    ("MX", "0x10 mail.example.test", "whole number"),
    ("MX", "१० mail.example.test", "whole number"),
    ("MX", "1_0 mail.example.test", "whole number"),
    ("MX", "65536 mail.example.test", "out of range"),
    ("MX", "99999999999999999999999 mx.example.test", "out of range"),
    ("MX", "10 .", "preference 0"),
    ("MX", "10 _mx.example.test", "underscore"),
    ("MX", "10 *.example.test", "wildcard"),
    ("MX", "10 mail..example.test", "empty label"),
    ("MX", "10 -mail.example.test", "label"),
    ("MX", "10 mail.example.test\t", "control"),
    ("MX", "10\tmail.example.test", "control"),
    ("MX", "10 192.0.2.1", "IP address"),
    ("MX", "10 2001:db8::1", "IP address"),
    ("MX", "10 1.2.3", "all-digit"),
    ("MX", "10 mäil.example.test", "ASCII"),
    ("MX", "10 " + "a" * 64 + ".test", "63"),
    ("MX", '10 "mail.example.test"', "label"),
    ("MX", "10\u00a0mail.example.test", "1 field"),
    ("MX", "10 mail.example.test\x7f", "control"),
    ("MX", "10 ..", "empty label"),
    # SRV
    ("SRV", "", "empty"),
    ("SRV", "10 60 5060", "3 fields"),
    ("SRV", "10 60 5060 sip.example.test extra", "5 fields"),
    ("SRV", "10 60 65536 sip.example.test", "port"),
    ("SRV", "70000 60 5060 sip.example.test", "priority"),
    ("SRV", "-1 60 5060 sip.example.test", "priority"),
    ("SRV", "10 +60 5060 sip.example.test", "weight"),
    ("SRV", "10 60 50.60 sip.example.test", "port"),
    ("SRV", "10 60 5060 _sip._tcp.example.test", "underscore"),
    ("SRV", "10 60 5060 *.example.test", "wildcard"),
    ("SRV", "10 60 5060 10.0.0.1", "IP address"),
    ("SRV", "a b c d", "priority"),
    ("SRV", "10 60 5060 sip..example.test", "empty label"),
    ("SRV", "10 60 5060 sip.example.test\n", "control"),
    # PTR
    ("PTR", "", "empty"),
    ("PTR", ".", "root"),
    ("PTR", "host.example.test other.example.test", "2 fields"),
    ("PTR", "_host.example.test", "underscore"),
    ("PTR", "*.example.test", "wildcard"),
    ("PTR", "192.0.2.1", "IP address"),
    ("PTR", "host.example.test\r", "control"),
    ("PTR", "hôst.example.test", "ASCII"),
    # NS
    ("NS", ".", "root"),
    ("NS", "", "empty"),
    ("NS", "ns1.example.test ns2.example.test", "2 fields"),
    ("NS", "_ns.example.test", "underscore"),
    ("NS", "*.example.test", "wildcard"),
    ("NS", "192.0.2.53", "IP address"),
    ("NS", "ns1.example.test\x00", "control"),
    ("NS", "ns1.exa_mple.test", "label"),
    ("NS", "ns1.example.test-", "label"),
    # CAA: the fields
    ("CAA", "", "empty"),
    ("CAA", "0 issue", "no value"),
    ("CAA", "0", "no value"),
    ("CAA", "256 issue ca.example.test", "out of range"),
    ("CAA", "-1 issue ca.example.test", "whole number"),
    ("CAA", "+0 issue ca.example.test", "whole number"),
    ("CAA", "x issue ca.example.test", "whole number"),
    ("CAA", "0 is-sue ca.example.test", "tag"),
    ("CAA", "0 issuer1234567890 x", "tag"),
    ("CAA", '0 "issue" ca.example.test', "tag"),
    ("CAA", "0 issue ca.example.test extra", "extra"),
    ("CAA", '0 issue "ca.example.test" extra', "extra"),
    ("CAA", '0 issue "ca.example.test', "closing"),
    ("CAA", '0 issue ca"x', "double quote"),
    ("CAA", "0 issue ca.example.test\n", "control"),
    ("CAA", '0 tbs "\ud800"', "surrogate"),
    # CAA: the value's characters and escapes
    ("CAA", '0 issue "ca.example.test\\009"', "printable"),
    ("CAA", '0 tbs "\\007"', "printable"),
    ("CAA", '0 tbs "\\255"', "UTF-8"),
    ("CAA", '0 tbs "\\256"', "escape"),
    ("CAA", '0 tbs "\\12"', "escape"),
    ("CAA", '0 tbs "x\\', "backslash"),
    ("CAA", '0 tbs "\u202e"', "printable"),
    # CAA: issue and issuewild values
    ("CAA", '0 issue "ca.example.test."', "dot"),
    ("CAA", '0 issue "*.example.test"', "wildcard"),
    ("CAA", '0 issue "ca_x.example.test"', "label"),
    ("CAA", '0 issue "ca example.test"', "label"),
    ("CAA", '0 issuewild "ca..example.test"', "empty label"),
    ("CAA", '0 issue "ca.example.test; accounturi"', "key=value"),
    ("CAA", '0 issue "ca.example.test; a-b=1"', "key=value"),
    ("CAA", '0 issue "ca.example.test; a=b c"', "key=value"),
    ("CAA", '0 issue "ca.example.test; a=1;"', "empty parameter"),
    ("CAA", '0 issue "ca.example.test;; a=1"', "empty parameter"),
    ("CAA", '0 issue "ca.example.test; =1"', "key=value"),
    # CAA: iodef values
    ("CAA", '0 iodef "ftp://example.test/"', "mailto"),
    ("CAA", '0 iodef ""', "empty"),
    ("CAA", '0 iodef "mailto:security"', "mail address"),
    ("CAA", '0 iodef "mailto:@example.test"', "mail address"),
    ("CAA", '0 iodef "mailto:sec@exa_mple.test"', "label"),
    ("CAA", '0 iodef "https://"', "host"),
    ("CAA", '0 iodef "https:/iodef.example.test"', "host"),
    ("CAA", '0 iodef "https://iodef.example.test:99999/"', "URL"),
    ("CAA", '0 iodef "https://[::1/"', "URL"),
    ("CAA", '0 iodef "https://iodef.example.test/a b"', "spaces"),
]


def case_id(case: tuple[str, str, str]) -> str:
    rtype, value, _ = case
    return f"{rtype}:{value[:40]!r}"


@pytest.mark.parametrize(("rtype", "value", "stored"), GOOD, ids=[case_id(case) for case in GOOD])
def test_a_good_value_is_stored_as_dnspython_prints_it(rtype: str, value: str, stored: str) -> None:
    assert normalize_value(rtype, value) == stored
    assert to_rdata(rtype, stored).to_text() == stored


@pytest.mark.parametrize(("rtype", "value", "stored"), GOOD, ids=[case_id(case) for case in GOOD])
def test_normalising_a_stored_value_of_any_type_returns_it_unchanged(rtype: str, value: str, stored: str) -> None:
    once = normalize_value(rtype, value)
    assert normalize_value(rtype, once) == once


@pytest.mark.parametrize(("rtype", "value", "word"), BAD, ids=[case_id(case) for case in BAD])
def test_a_bad_value_is_rejected_with_a_message_that_says_why(rtype: str, value: str, word: str) -> None:
    with pytest.raises(BadValue) as info:
        normalize_value(rtype, value)
    assert word in str(info.value)


def test_the_cases_cover_every_type_with_enough_of_them() -> None:
    assert len(GOOD) + len(BAD) >= 150
    assert {rtype for rtype, _, _ in GOOD} == set(SUPPORTED_TYPES)
    assert {rtype for rtype, _, _ in BAD} == set(SUPPORTED_TYPES)


def test_supported_types_is_a_tuple_of_the_nine_common_types() -> None:
    assert isinstance(SUPPORTED_TYPES, tuple)
    assert sorted(SUPPORTED_TYPES) == ["A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "SRV", "TXT"]


def test_a_caa_value_of_exactly_the_size_limit_is_accepted() -> None:
    stored = normalize_value("CAA", '0 tbs "' + "v" * MAX_CAA_VALUE_OCTETS + '"')
    assert stored == '0 tbs "' + "v" * MAX_CAA_VALUE_OCTETS + '"'


def test_a_caa_value_over_the_size_limit_is_rejected_with_its_size() -> None:
    with pytest.raises(BadValue, match=f"is {MAX_CAA_VALUE_OCTETS + 1} octets long; the limit is"):
        normalize_value("CAA", '0 tbs "' + "v" * (MAX_CAA_VALUE_OCTETS + 1) + '"')


@pytest.mark.parametrize("rtype", SUPPORTED_TYPES)
@pytest.mark.parametrize(
    "value",
    ["x" * 100_000, "1 " * 50_000, "10 " + "a" * 100_000, '0 issue "' + "a." * 50_000, "\u00a0" * 100_000],
    ids=["one-word", "many-fields", "long-name", "long-caa", "nbsp"],
)
def test_a_huge_value_is_never_repeated_in_full_in_the_message(rtype: str, value: str) -> None:
    with pytest.raises(BadValue) as info:
        normalize_value(rtype, value)
    assert len(str(info.value)) < 300


# value_target -------------------------------------------------------------------------

TARGETS: list[tuple[str, str, str | None]] = [
    ("CNAME", "Target.Example.Test", "target.example.test."),
    ("CNAME", "_dmarc.example.net.", "_dmarc.example.net."),
    ("MX", "10 Mail.Example.Test", "mail.example.test."),
    ("MX", "10 mail.example.test.", "mail.example.test."),
    ("MX", "0 .", None),
    ("SRV", "1 2 3 sip.example.test", "sip.example.test."),
    ("SRV", "0 0 0 .", None),
    ("NS", "ns1.example.test.", "ns1.example.test."),
    ("PTR", "host.example.test", "host.example.test."),
    ("A", "192.0.2.1", None),
    ("AAAA", "2001:db8::1", None),
    ("TXT", "mail.example.test", None),
    ("CAA", '0 issue "ca.example.test"', None),
]


@pytest.mark.parametrize(("rtype", "value", "target"), TARGETS)
def test_value_target_is_the_absolute_host_name_a_value_points_at(rtype: str, value: str, target: str | None) -> None:
    assert value_target(rtype, value) == target
    assert value_target(rtype, normalize_value(rtype, value)) == target


@pytest.mark.parametrize(
    ("rtype", "value", "stored", "target"),
    [
        ("MX", "10 mail", "10 mail.", "mail."),
        ("NS", "ns1", "ns1.", "ns1."),
        ("PTR", "host.example", "host.example.", "host.example."),
        ("SRV", "0 0 443 web", "0 0 443 web.", "web."),
    ],
)
def test_a_name_without_the_dot_is_absolute_never_relative_to_a_zone(
    rtype: str, value: str, stored: str, target: str
) -> None:
    assert normalize_value(rtype, value) == stored
    assert value_target(rtype, value) == target


@pytest.mark.parametrize(("rtype", "value"), [("MX", "mail.example.test"), ("NS", "."), ("SRV", "1 2 3")])
def test_value_target_of_a_bad_value_is_a_bad_value(rtype: str, value: str) -> None:
    with pytest.raises(BadValue):
        value_target(rtype, value)


# Random input -------------------------------------------------------------------------

FUZZ_SEED = 20_261_126
FUZZ_STRINGS_PER_TYPE = 330  # 9 types: 2,970 strings in all
FUZZ_PIECES = [
    *'0123456789aAzZ ."\\;()*_-:/@=+%[]?#é',
    *["\t", "\n", "\x00", "\x7f", "\ud800", "\u00a0", "\u202e", "२"],
    *["https://", "mailto:", "issue", "iodef", "\\255", "\\1", "\\0", "ca.example.test"],
]
FUZZ_PREFIXES = ["", "", "", "0 ", "10 ", "1 2 3 ", "0 issue ", "0 iodef ", "128 tbs ", '"', '0 issuewild "']


def test_random_strings_raise_nothing_but_bad_value_and_what_is_accepted_is_stable() -> None:
    rng = random.Random(FUZZ_SEED)
    started = time.monotonic()
    accepted = 0
    for rtype in SUPPORTED_TYPES:
        for _ in range(FUZZ_STRINGS_PER_TYPE):
            pieces = rng.choices(FUZZ_PIECES, k=rng.randint(0, 12))
            value = rng.choice(FUZZ_PREFIXES) + "".join(pieces)
            try:
                stored = normalize_value(rtype, value)
            except BadValue:
                continue
            accepted += 1
            assert normalize_value(rtype, stored) == stored, (rtype, value)
            assert to_rdata(rtype, stored).to_text() == stored, (rtype, value)
            value_target(rtype, stored)
    assert accepted > 0
    assert time.monotonic() - started < 2
