"""Record values: parsed from what a client sends, stored in canonical presentation format.

``normalize_value`` is what the API stores and returns; ``to_rdata`` turns a stored value
back into a dnspython rdata for an UPDATE message or a comparison with what a server
serves. Normalising a normalised value returns it unchanged.

What a client sends, per type (fields are separated by spaces; names in values are
absolute, the trailing dot optional, and are stored lower case with the dot):

- A, AAAA: an address; AAAA is stored compressed as dnspython writes it.
- CNAME: a name (underscore labels allowed). NS, PTR: a host name.
- MX: ``PREFERENCE EXCHANGE``; ``0 .`` is the null MX of RFC 7505.
- SRV: ``PRIORITY WEIGHT PORT TARGET``; the target ``.`` says "no such service" (RFC 2782).
- CAA: ``FLAGS TAG VALUE`` (RFC 8659); the value is one word or a quoted string.
- TXT: literal text, or presentation format when it starts with a double quote.

Every failure is a ``BadValue`` whose message a person can act on; dnspython's exceptions
never escape.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import dns.exception
import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.SRV import SRV
from dns.rdtypes.mxbase import MXBase
from dns.rdtypes.nsbase import NSBase

from service.dns.names import BadName, normalize_name, shown

SUPPORTED_TYPES = ("A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "SRV", "TXT")
TXT_STRING_OCTETS = 255
MAX_TXT_OCTETS = 4000
MAX_CAA_VALUE_OCTETS = 4000
MAX_UINT8 = 255
MAX_UINT16 = 65535
_TARGET_TYPES = frozenset({"CNAME", "MX", "NS", "PTR", "SRV"})
_CAA_ISSUE_TAGS = frozenset({"issue", "issuewild"})

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_CONTROL_BUT_TAB = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile("[0-9]+")
_TYPE_MNEMONIC = re.compile("[A-Za-z0-9-]{1,20}")
_CAA_TAG = re.compile("[A-Za-z0-9]{1,15}")
_CAA_PARAMETER = re.compile("[A-Za-z0-9]+ *= *[!-:<-~]*")  # RFC 8659 §4.2; the value has no space or ';'
_PRINTABLE_ASCII = re.compile("[!-~]+")


class BadValue(ValueError):
    """The value is not valid for its type; the message says why."""


def normalize_value(rtype: str, value: str) -> str:
    """The canonical stored text of ``value``, exactly as dnspython prints it, or raise BadValue."""
    if not isinstance(value, str):
        raise BadValue("must be a string")
    normalize = _NORMALIZERS.get(rtype) if isinstance(rtype, str) else None
    if normalize is None:
        named = rtype if isinstance(rtype, str) and _TYPE_MNEMONIC.fullmatch(rtype) else shown(rtype)
        raise BadValue(f"type {named} is not supported")
    if _SURROGATE.search(value):
        raise BadValue("holds a lone UTF-16 surrogate, which is not text; send valid Unicode")
    if rtype == "TXT":
        if _CONTROL_BUT_TAB.search(value):
            raise BadValue("must not contain control characters (write them as \\DDD in a quoted string)")
    elif _CONTROL.search(value):
        raise BadValue("must not contain control characters")
    return normalize(value)


def value_target(rtype: str, value: str) -> str | None:
    """The host name a value points at (absolute, with the dot), or None.

    None for types without a target (A, AAAA, CAA, TXT) and for the "." of a null MX or an
    SRV "service not available". Raises BadValue when ``value`` is not valid for ``rtype``.
    """
    if rtype not in _TARGET_TYPES:
        return None
    rdata = to_rdata(rtype, normalize_value(rtype, value))
    if isinstance(rdata, MXBase):
        target = rdata.exchange
    else:
        assert isinstance(rdata, NSBase | SRV)  # CNAME, NS, PTR; SRV
        target = rdata.target
    return None if target == dns.name.root else target.to_text()


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


# A, AAAA ------------------------------------------------------------------------------


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


# Names: CNAME, NS, PTR, MX, SRV -------------------------------------------------------


def _cname(value: str) -> str:
    try:
        return normalize_name(value, allow_underscore=True)
    except BadName as exc:
        raise BadValue(f"target {exc}") from exc


def _ns(value: str) -> str:
    (host,) = _fields(value, "HOST", "ns1.example.test")
    return _canonical("NS", _host(host, "name server"))


def _ptr(value: str) -> str:
    (host,) = _fields(value, "HOST", "host.example.test")
    return _canonical("PTR", _host(host, "target"))


def _mx(value: str) -> str:
    preference, exchange = _fields(value, "PREFERENCE EXCHANGE", "10 mail.example.test")
    number = _number(preference, "preference", MAX_UINT16)
    if exchange == ".":
        if number != 0:
            raise BadValue(f"a null MX (exchange '.') must have preference 0, not {number} (RFC 7505)")
        return _canonical("MX", "0 .")
    return _canonical("MX", f"{number} {_host(exchange, 'exchange')}")


def _srv(value: str) -> str:
    priority, weight, port, target = _fields(value, "PRIORITY WEIGHT PORT TARGET", "10 5 5060 sip.example.test")
    fields = ((priority, "priority"), (weight, "weight"), (port, "port"))
    numbers = [str(_number(field, role, MAX_UINT16)) for field, role in fields]
    host = "." if target == "." else _host(target, "target")  # "." = the service is not available
    return _canonical("SRV", " ".join([*numbers, host]))


def _fields(value: str, layout: str, example: str) -> list[str]:
    """The space-separated fields of ``value``: exactly as many as ``layout`` names."""
    fields = [field for field in value.split(" ") if field]
    wanted = len(layout.split(" "))
    if not fields:
        raise BadValue(f"must not be empty; write {layout}, e.g. {example!r}")
    if len(fields) != wanted:
        count = f"{len(fields)} field" + ("s" if len(fields) > 1 else "")
        raise BadValue(f"{shown(value)} has {count}; write {layout} separated by spaces, e.g. {example!r}")
    return fields


def _number(field: str, role: str, maximum: int) -> int:
    if not _DIGITS.fullmatch(field):
        raise BadValue(f"{role} {shown(field)} is not a whole number from 0 to {maximum}")
    significant = field.lstrip("0") or "0"
    if len(significant) > len(str(maximum)) or int(significant) > maximum:
        raise BadValue(f"{role} {shown(field)} is out of range; use 0 to {maximum}")
    return int(significant)


def _host(field: str, role: str) -> str:
    """A host name (LDH labels, no underscore, no wildcard), absolute with the dot."""
    if "*" in field.split("."):
        raise BadValue(f"{role} {shown(field)} is a wildcard name; it must be a host name")
    try:
        ipaddress.ip_address(field)
    except ValueError:
        pass
    else:
        raise BadValue(f"{role} {shown(field)} is an IP address; it must be a host name (with an A or AAAA record)")
    try:
        host = normalize_name(field)
    except BadName as exc:
        raise BadValue(f"{role} {exc}") from exc
    if host[:-1].rpartition(".")[2].isdigit():
        raise BadValue(f"{role} {shown(field)} ends in an all-digit label, which no host name does (RFC 1123 §2.1)")
    return host


def _canonical(rtype: str, text: str) -> str:
    """What dnspython prints for ``text``, which our own checks have already accepted."""
    try:
        return to_rdata(rtype, text).to_text()
    except (dns.exception.DNSException, ValueError) as exc:  # not expected after our checks
        raise BadValue(f"is not a valid {rtype} value ({exc})") from exc


# CAA ----------------------------------------------------------------------------------


def _caa(value: str) -> str:
    """``FLAGS TAG VALUE`` (RFC 8659 §4.1.1); the value is one word or a quoted string."""
    example = '0 issue "letsencrypt.org"'
    flags_field, rest = _first_field(value.strip(" "))
    tag_field, rest = _first_field(rest)
    if not flags_field:
        raise BadValue(f"must not be empty; write FLAGS TAG VALUE, e.g. {example!r}")
    if not rest:
        raise BadValue(f'{shown(value)} has no value; write FLAGS TAG VALUE, e.g. {example!r} (an empty value is "")')
    flags = _number(flags_field, "flags", MAX_UINT8)
    if not _CAA_TAG.fullmatch(tag_field):
        raise BadValue(f"tag {shown(tag_field)} must be 1 to 15 letters and digits, such as issue, issuewild or iodef")
    tag = tag_field.lower()
    octets = _caa_value_octets(rest)
    if len(octets) > MAX_CAA_VALUE_OCTETS:
        raise BadValue(f"value is {len(octets)} octets long; the limit is {MAX_CAA_VALUE_OCTETS}")
    try:
        text = octets.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadValue("value is not valid UTF-8 text") from exc
    if not text.isprintable():
        raise BadValue("value must hold only printable characters (no control or format characters)")
    if tag in _CAA_ISSUE_TAGS:
        _check_issue_value(tag, text)
    elif tag == "iodef":
        _check_iodef_value(text)
    return _canonical("CAA", f'{flags} {tag} "{_quoted_string_body(octets)}"')


def _first_field(text: str) -> tuple[str, str]:
    field, _, rest = text.partition(" ")
    return field, rest.lstrip(" ")


def _caa_value_octets(text: str) -> bytes:
    """The octets of a CAA value written as one word or one quoted string, with \\X and \\DDD escapes."""
    quoted = text.startswith('"')
    index = 1 if quoted else 0
    octets = bytearray()
    while index < len(text):
        char = text[index]
        if char == "\\":
            escape = text[index + 1 : index + 4]
            if not escape:
                raise BadValue("value ends with a lone backslash")
            if escape[0] in "0123456789":
                if not _DIGITS.fullmatch(escape) or len(escape) != 3 or int(escape) > MAX_UINT8:
                    raise BadValue(f"value has the escape {shown(chr(92) + escape)}; write \\DDD with 000 to 255")
                octets.append(int(escape))
                index += 4
            else:
                octets += escape[0].encode("utf-8")
                index += 2
        elif char == '"':
            if not quoted:
                raise BadValue("value has a double quote inside a word; put the whole value in double quotes")
            extra = text[index + 1 :].strip(" ")
            if extra:
                raise BadValue(f"has extra text {shown(extra)} after the quoted value")
            return bytes(octets)
        elif char == " " and not quoted:
            raise BadValue(f"has extra text after the value {shown(text)}; put a value with spaces in double quotes")
        else:
            octets += char.encode("utf-8")
            index += 1
    if quoted:
        raise BadValue("value has no closing double quote")
    return bytes(octets)


def _quoted_string_body(octets: bytes) -> str:
    """``octets`` written inside a presentation-format quoted string."""
    return "".join(
        "\\" + chr(octet) if octet in b'"\\' else chr(octet) if 0x20 <= octet < 0x7F else f"\\{octet:03d}"
        for octet in octets
    )


def _check_issue_value(tag: str, text: str) -> None:
    """RFC 8659 §4.2: ``[issuer-domain-name] [; key=value; ...]``; empty (or ";") means no CA."""
    domain, _, parameters = text.partition(";")
    domain = domain.strip(" ")
    if domain:
        if domain.endswith("."):
            raise BadValue(f"{tag} domain {shown(domain)} must not end with a dot")
        if "*" in domain.split("."):
            raise BadValue(f"{tag} domain {shown(domain)} must not be a wildcard name")
        try:
            normalize_name(domain)
        except BadName as exc:
            raise BadValue(f"{tag} domain {shown(domain)} {exc}") from exc
    parameters = parameters.strip(" ")
    if not parameters:
        return
    for parameter in parameters.split(";"):
        if not parameter.strip(" "):
            raise BadValue(f"{tag} value has an empty parameter; remove the extra ';'")
        if not _CAA_PARAMETER.fullmatch(parameter.strip(" ")):
            raise BadValue(
                f"{tag} parameter {shown(parameter.strip(' '))} must be key=value: "
                "a key of letters and digits, a value without spaces or ';'"
            )


def _check_iodef_value(text: str) -> None:
    """RFC 8659 §4.4: where to report a refused issuance, a mailto:, http: or https: URL."""
    wanted = "a mailto:, http: or https: URL"
    if not text:
        raise BadValue(f"iodef value must not be empty; it must be {wanted}")
    if not _PRINTABLE_ASCII.fullmatch(text):
        raise BadValue(f"iodef value {shown(text)} must be {wanted} without spaces")
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    if scheme == "mailto":
        local, at, domain = rest.split("?", 1)[0].rpartition("@")
        if not local or not at or not domain:
            raise BadValue(f"iodef value {shown(text)} must be a mail address such as mailto:security@example.test")
        try:
            normalize_name(domain)
        except BadName as exc:
            raise BadValue(f"iodef mail domain {shown(domain)} {exc}") from exc
        return
    if scheme not in ("http", "https"):
        raise BadValue(f"iodef value {shown(text)} must be {wanted}")
    try:
        url = urlsplit(text)
        url.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:
        raise BadValue(f"iodef value {shown(text)} is not a valid URL ({exc})") from exc
    if not rest.startswith("//") or not url.hostname:
        raise BadValue(f"iodef value {shown(text)} must name a host, e.g. https://ca.example.test/report")


# TXT ----------------------------------------------------------------------------------


def _txt(value: str) -> str:
    """A TXT value is presentation format when it starts with a double quote, else literal text."""
    if value.startswith('"'):
        if _has_comment(value):
            raise BadValue(
                "has a ';' outside the quotes, which presentation format reads as the start of a comment; "
                "put it inside the quotes"
            )
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


def _has_comment(text: str) -> bool:
    """True when presentation-format ``text`` has a ';' outside quotes, which starts a comment there."""
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            return True
    return False


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


_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "A": _ipv4,
    "AAAA": _ipv6,
    "CAA": _caa,
    "CNAME": _cname,
    "MX": _mx,
    "NS": _ns,
    "PTR": _ptr,
    "SRV": _srv,
    "TXT": _txt,
}
