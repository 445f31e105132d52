"""RFC 2136 UPDATE messages signed with TSIG, rcode mapping and the served-RRset comparison."""

from __future__ import annotations

import base64
import socket

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
import pytest

from service.core.errors import PermanentDnsError, TransientDnsError
from workers.rfc2136 import Server, TsigKey, check_rcode, matches, replace_rrset_update, send_update

SECRET = base64.b64encode(b"unit-test-secret-of-32-octets!!!").decode()
KEY = TsigKey(name="hostmaster-key.", algorithm="hmac-sha256", secret=SECRET)
ZONE = "example.test."


def keyring(secret: str = SECRET) -> dict[dns.name.Name, dns.tsig.Key]:
    name = dns.name.from_text(KEY.name)
    return {name: dns.tsig.Key(name, secret, KEY.algorithm)}


def parsed(update: dns.update.UpdateMessage) -> dns.update.UpdateMessage:
    """The update as a server receives it: signed on the wire, verified with the same key."""
    message = dns.message.from_wire(update.to_wire(), keyring=keyring())
    assert isinstance(message, dns.update.UpdateMessage)
    return message


def closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# replace_rrset_update -----------------------------------------------------------------


def added(update: dns.update.UpdateMessage) -> list[tuple[str, str, int, str]]:
    """Every RR the update adds, as (owner, type, TTL, value); the wire gives one RRset per RR."""
    return sorted(
        (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rrset.ttl, rdata.to_text())
        for rrset in update.update
        if rrset.deleting is None
        for rdata in rrset
    )


def test_the_update_is_for_the_zone_and_deletes_the_rrset_before_adding_every_value() -> None:
    update = parsed(replace_rrset_update(ZONE, "www.example.test.", "A", 300, ["192.0.2.1", "192.0.2.2"], KEY))
    assert update.opcode() == dns.opcode.UPDATE
    [zone] = update.zone
    assert zone.name == dns.name.from_text(ZONE)
    assert zone.rdtype == dns.rdatatype.SOA
    assert update.prerequisite == []

    delete, *adds = update.update
    assert delete.name == dns.name.from_text("www.example.test.")
    assert delete.rdtype == dns.rdatatype.A
    assert delete.deleting == dns.rdataclass.ANY
    assert len(delete) == 0
    assert all(rrset.deleting is None and rrset.rdclass == dns.rdataclass.IN for rrset in adds)
    assert added(update) == [
        ("www.example.test.", "A", 300, "192.0.2.1"),
        ("www.example.test.", "A", 300, "192.0.2.2"),
    ]


def test_an_update_without_values_only_deletes_the_rrset() -> None:
    update = parsed(replace_rrset_update(ZONE, "old.example.test.", "TXT", 300, [], KEY))
    [delete] = update.update
    assert delete.name == dns.name.from_text("old.example.test.")
    assert delete.rdtype == dns.rdatatype.TXT
    assert delete.deleting == dns.rdataclass.ANY


@pytest.mark.parametrize("target", ["target.other.test.", "target.other.test"])
def test_a_cname_target_outside_the_zone_is_not_made_relative_to_the_zone(target: str) -> None:
    update = parsed(replace_rrset_update(ZONE, "www.example.test.", "CNAME", 600, [target], KEY))
    assert added(update) == [("www.example.test.", "CNAME", 600, "target.other.test.")]
    assert "target.other.test.example.test" not in update.to_text()


def test_a_cname_target_inside_the_zone_stays_a_full_name() -> None:
    update = parsed(replace_rrset_update(ZONE, "www.example.test.", "CNAME", 600, ["web.example.test."], KEY))
    assert added(update) == [("www.example.test.", "CNAME", 600, "web.example.test.")]


def test_txt_values_keep_their_character_strings_in_the_update() -> None:
    update = parsed(replace_rrset_update(ZONE, "txt.example.test.", "TXT", 120, ['"a" "b"', '"hello"'], KEY))
    assert added(update) == [
        ("txt.example.test.", "TXT", 120, '"a" "b"'),
        ("txt.example.test.", "TXT", 120, '"hello"'),
    ]


def test_the_update_is_signed_with_the_tsig_key() -> None:
    update = replace_rrset_update(ZONE, "www.example.test.", "A", 300, ["192.0.2.1"], KEY)
    assert update.keyname == dns.name.from_text("hostmaster-key.")
    assert update.keyalgorithm == dns.name.from_text("hmac-sha256.")
    wire = update.to_wire()
    received = dns.message.from_wire(wire, keyring=keyring())
    assert received.had_tsig
    assert received.keyname == dns.name.from_text("hostmaster-key.")


def test_a_server_with_another_secret_rejects_the_signature() -> None:
    wire = replace_rrset_update(ZONE, "www.example.test.", "A", 300, ["192.0.2.1"], KEY).to_wire()
    other = base64.b64encode(b"another-secret-of-32-octets!!!!!").decode()
    with pytest.raises(dns.tsig.BadSignature):
        dns.message.from_wire(wire, keyring=keyring(other))


@pytest.mark.parametrize("secret", ["not base64", "abcde", "tsig!secret", "c2VjcmV0===x", "====", "abcd!!!!"])
def test_a_secret_that_is_not_base64_is_a_permanent_error(secret: str) -> None:
    key = TsigKey(name="hostmaster-key.", algorithm="hmac-sha256", secret=secret)
    with pytest.raises(PermanentDnsError) as info:
        replace_rrset_update(ZONE, "www.example.test.", "A", 300, ["192.0.2.1"], key)
    assert info.value.code == "tsig_secret_invalid"
    assert "hostmaster-key." in info.value.detail
    assert secret not in info.value.detail


def test_the_tsig_key_repr_never_shows_the_secret() -> None:
    text = repr(KEY)
    assert SECRET not in text
    assert "**********" in text
    assert "hostmaster-key." in text
    assert SECRET not in str(KEY)
    assert SECRET not in repr([KEY, {"key": KEY}])


# check_rcode --------------------------------------------------------------------------


def test_noerror_is_returned_as_it_is() -> None:
    assert check_rcode(dns.rcode.NOERROR) == dns.rcode.NOERROR


def test_servfail_is_a_transient_error_to_retry() -> None:
    with pytest.raises(TransientDnsError) as info:
        check_rcode(dns.rcode.SERVFAIL)
    assert info.value.code == "servfail"
    assert "SERVFAIL" in info.value.detail


@pytest.mark.parametrize(
    ("rcode", "code", "mentions"),
    [
        (dns.rcode.NOTAUTH, "not_authoritative", "NOTAUTH"),
        (dns.rcode.REFUSED, "refused", "REFUSED"),
        (dns.rcode.NOTZONE, "not_in_zone", "NOTZONE"),
        (dns.rcode.FORMERR, "format_error", "FORMERR"),
        (dns.rcode.NOTIMP, "not_implemented", "NOTIMP"),
        (dns.rcode.YXRRSET, "prerequisite_failed", "YXRRSET"),
        (dns.rcode.BADVERS, "unexpected_rcode", "BADVERS"),
    ],
)
def test_a_refusal_is_a_permanent_error_with_its_own_code(rcode: dns.rcode.Rcode, code: str, mentions: str) -> None:
    with pytest.raises(PermanentDnsError) as info:
        check_rcode(rcode)
    assert info.value.code == code
    assert mentions in info.value.detail


def test_notauth_refused_and_notzone_have_distinct_codes() -> None:
    codes = set()
    for rcode in (dns.rcode.NOTAUTH, dns.rcode.REFUSED, dns.rcode.NOTZONE):
        with pytest.raises(PermanentDnsError) as info:
            check_rcode(rcode)
        codes.add(info.value.code)
    assert len(codes) == 3
    assert "dns_permanent" not in codes


# send_update --------------------------------------------------------------------------


def test_sending_to_a_closed_port_is_a_transient_unreachable_error() -> None:
    port = closed_loopback_port()
    update = replace_rrset_update(ZONE, "www.example.test.", "A", 300, ["192.0.2.1"], KEY)
    with pytest.raises(TransientDnsError) as info:
        send_update(update, Server(host="127.0.0.1", port=port, timeout_s=2.0))
    assert info.value.code == "dns_unreachable"
    assert f"127.0.0.1:{port}" in info.value.detail
    assert SECRET not in info.value.detail


# matches ------------------------------------------------------------------------------


def served(rtype: str, ttl: int, *values: str, owner: str = "www.example.test.") -> dns.rrset.RRset:
    return dns.rrset.from_text(owner, ttl, "IN", rtype, *values)


def test_the_same_values_and_ttl_match_in_any_order() -> None:
    assert matches(served("A", 300, "192.0.2.2", "192.0.2.1"), "A", 300, ["192.0.2.1", "192.0.2.2"])


def test_another_ttl_does_not_match() -> None:
    assert not matches(served("A", 300, "192.0.2.1"), "A", 600, ["192.0.2.1"])


@pytest.mark.parametrize(
    "wanted",
    [["192.0.2.1"], ["192.0.2.1", "192.0.2.2", "192.0.2.3"], ["192.0.2.9", "192.0.2.2"]],
)
def test_missing_extra_or_other_values_do_not_match(wanted: list[str]) -> None:
    assert not matches(served("A", 300, "192.0.2.1", "192.0.2.2"), "A", 300, wanted)


def test_nothing_served_does_not_match_wanted_values() -> None:
    assert not matches(None, "A", 300, ["192.0.2.1"])


def test_no_values_match_nothing_served_or_an_empty_rrset() -> None:
    assert matches(None, "A", 300, [])
    empty = dns.rrset.RRset(dns.name.from_text("www.example.test."), dns.rdataclass.IN, dns.rdatatype.A)
    assert matches(empty, "A", 300, [])
    assert not matches(served("A", 300, "192.0.2.1"), "A", 300, [])


def test_txt_matches_only_with_the_same_character_strings() -> None:
    assert matches(served("TXT", 300, '"a" "b"'), "TXT", 300, ['"a" "b"'])
    assert not matches(served("TXT", 300, '"a" "b"'), "TXT", 300, ['"ab"'])
    assert not matches(served("TXT", 300, '"hello"'), "TXT", 300, ['"Hello"'])


def test_a_cname_target_matches_whatever_its_case() -> None:
    assert matches(served("CNAME", 300, "Target.Other.Test."), "CNAME", 300, ["target.other.test."])
    assert not matches(served("CNAME", 300, "target.other.test."), "CNAME", 300, ["target.example.test."])


def test_aaaa_matches_by_address_not_by_text() -> None:
    assert matches(served("AAAA", 300, "2001:DB8:0:0:0:0:0:1"), "AAAA", 300, ["2001:db8::1"])


def test_an_unknown_tsig_algorithm_is_a_permanent_error() -> None:
    key = TsigKey("k.", "hmac-foo", base64.b64encode(b"0123456789abcdef0123456789abcdef").decode())

    with pytest.raises(PermanentDnsError) as raised:
        replace_rrset_update("example.test.", "www.example.test.", "A", 300, ["192.0.2.1"], key)

    assert raised.value.code == "tsig_algorithm_unknown"
