"""Record values: parsed from what a client sends, stored in canonical presentation format.

``normalize_value`` is what the API stores and returns; ``to_rdata`` turns a stored value
back into a dnspython rdata for an UPDATE message or a comparison with what a server
serves. Normalising a normalised value returns it unchanged.
"""

from __future__ import annotations

import ipaddress

import dns.exception
import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.TXT import TXT

from service.names import BadName, normalize_name, shown

SUPPORTED_TYPES = ("A", "AAAA", "CNAME", "TXT")
TXT_STRING_OCTETS = 255
MAX_TXT_OCTETS = 4000


class BadValue(ValueError):
    """The value is not valid for its type; the message says why."""


def normalize_value(rtype: str, value: str) -> str:
    if not isinstance(value, str):
        raise BadValue("must be a string")
    if rtype == "A":
        return _ipv4(value)
    if rtype == "AAAA":
        return _ipv6(value)
    if rtype == "CNAME":
        try:
            return normalize_name(value, allow_underscore=True)
        except BadName as exc:
            raise BadValue(f"target {exc}") from exc
    if rtype == "TXT":
        return _txt(value)
    raise BadValue(f"type {rtype} is not supported")


def to_rdata(rtype: str, value: str) -> dns.rdata.Rdata:
    """The rdata for a stored (normalised) value; names stay absolute."""
    return dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.from_text(rtype), value, origin=dns.name.root, relativize=False
    )


def txt_text(value: str) -> str:
    """The text a stored TXT value carries: its strings joined, as a resolver's user reads it."""
    rdata = to_rdata("TXT", value)
    assert isinstance(rdata, TXT)
    return b"".join(rdata.strings).decode("utf-8", errors="backslashreplace")


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError as exc:
        raise BadValue(f"{shown(value)} is not an IPv4 address in dotted-quad form") from exc


def _ipv6(value: str) -> str:
    try:
        address = ipaddress.IPv6Address(value.strip())
    except ValueError as exc:
        raise BadValue(f"{shown(value)} is not an IPv6 address") from exc
    if address.scope_id:
        raise BadValue(f"{shown(value)} has a zone index (%...), which DNS cannot carry")
    return dns.ipv6.inet_ntoa(address.packed)  # dnspython's form, also for IPv4-mapped addresses


def _txt(value: str) -> str:
    """A TXT value is presentation format when it starts with a double quote, else literal text."""
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise BadValue("holds a lone UTF-16 surrogate, which is not text; send valid Unicode")
    if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in value):
        raise BadValue("must not contain control characters (write them as \\DDD in a quoted string)")
    if value.startswith('"'):
        try:
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, value)
        except dns.exception.DNSException as exc:
            raise BadValue(
                f"is not valid presentation format ({exc}); to send literal text, do not start it with a quote"
            ) from exc
        strings = list(rdata.strings)  # type: ignore[attr-defined]
    else:
        if not value:
            raise BadValue("must not be empty")
        strings = _split(value.encode("utf-8"))
    total = sum(len(s) for s in strings)
    if total > MAX_TXT_OCTETS:
        raise BadValue(f"is {total} octets long; the limit is {MAX_TXT_OCTETS}")
    return TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings).to_text()


def _split(text: bytes) -> list[bytes]:
    """Split into character-strings of at most 255 octets, never inside a UTF-8 character."""
    strings = []
    while len(text) > TXT_STRING_OCTETS:
        cut = TXT_STRING_OCTETS
        while cut > 0 and (text[cut] & 0xC0) == 0x80:
            cut -= 1
        strings.append(text[:cut])
        text = text[cut:]
    strings.append(text)
    return strings
