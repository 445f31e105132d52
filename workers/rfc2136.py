"""RFC 2136 dynamic updates signed with TSIG (RFC 8945), the query that proves them, and the
zone transfer (AXFR, RFC 5936) that reconciliation reads.

This is the boundary to dnspython: its exceptions and rcodes are turned here into
``TransientDnsError`` (try again later) or ``PermanentDnsError`` (a person must act).
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.xfr
import dns.zone

from service.core.errors import DnsError, PermanentDnsError, TransientDnsError
from service.dns.rdata import to_rdata
from service.registry.zones import TSIG_ALGORITHMS
from workers import metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    timeout_s: float


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str
    secret: str  # base64, as tsig-keygen prints it; never logged

    def __repr__(self) -> str:
        return f"TsigKey(name={self.name!r}, algorithm={self.algorithm!r}, secret='**********')"


# What each refusal means to the person reading the request's error.
_PERMANENT_RCODES = {
    dns.rcode.NOTAUTH: (
        "not_authoritative",
        "the server is not authoritative for the zone or did not accept the TSIG key (NOTAUTH)",
    ),
    dns.rcode.REFUSED: ("refused", "the server refused the update (REFUSED): check its allow-update policy"),
    dns.rcode.NOTZONE: ("not_in_zone", "a name in the update is outside the zone (NOTZONE)"),
    dns.rcode.FORMERR: ("format_error", "the server could not parse the update (FORMERR)"),
    dns.rcode.NOTIMP: ("not_implemented", "the server does not implement dynamic update (NOTIMP)"),
    dns.rcode.YXDOMAIN: ("prerequisite_failed", "a prerequisite failed: the name exists (YXDOMAIN)"),
    dns.rcode.YXRRSET: ("prerequisite_failed", "a prerequisite failed: the RRset exists (YXRRSET)"),
    dns.rcode.NXDOMAIN: ("prerequisite_failed", "a prerequisite failed: the name does not exist (NXDOMAIN)"),
    dns.rcode.NXRRSET: ("prerequisite_failed", "a prerequisite failed: the RRset does not exist (NXRRSET)"),
}


# An UPDATE over TCP may be 65,535 octets; stay well below, TSIG and all.
MAX_UPDATE_OCTETS = 48_000
MAX_RRSETS_PER_UPDATE = 1_000


@dataclass(frozen=True)
class RRsetChange:
    """One RRset in an UPDATE: what it holds afterwards, and what it must hold before.

    ``values`` empty: the RRset goes. ``expected``: an RFC 2136 prerequisite that the
    server holds exactly these values (empty: that it holds none); None: no prerequisite.
    ``sent``: the states Hostmaster sent since it last saw one land, whose answers it never
    got (a primary or a worker that died in the middle): finding one of them served is not drift.
    """

    owner: str
    rtype: str
    ttl: int
    values: tuple[str, ...]
    expected: tuple[str, ...] | None = None
    sent: tuple[tuple[str, ...], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.owner, self.rtype)


def update_message(zone: str, changes: Sequence[RRsetChange], key: TsigKey) -> dns.update.UpdateMessage:
    """One signed UPDATE: for each RRset its prerequisite, then delete it and add its values."""
    update = dns.update.UpdateMessage(
        zone,
        keyring=_keyring(key),
        keyname=dns.name.from_text(key.name),
        keyalgorithm=TSIG_ALGORITHMS.get(key.algorithm.lower(), key.algorithm),
    )
    for change in changes:
        name = dns.name.from_text(change.owner)
        rdtype = dns.rdatatype.from_text(change.rtype)
        if change.expected is not None:
            if change.expected:
                rdatas = [to_rdata(change.rtype, value) for value in change.expected]
                update.present(name, dns.rdataset.from_rdata_list(0, rdatas))
            else:
                update.absent(name, rdtype)
    # Every delete before any add: a CNAME that replaces an A at the same name in one change
    # set must not be added while the A is still there (BIND ignores it, RFC 2136 §3.4.2.2).
    for change in changes:
        update.delete(dns.name.from_text(change.owner), dns.rdatatype.from_text(change.rtype))
    for change in changes:
        name = dns.name.from_text(change.owner)
        rdtype = dns.rdatatype.from_text(change.rtype)
        if change.values:
            rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
            for value in change.values:
                rrset.add(to_rdata(change.rtype, value), change.ttl)
            update.add(name, rrset)
    return update


def replace_rrset_update(
    zone: str, owner: str, rtype: str, ttl: int, values: Sequence[str], key: TsigKey
) -> dns.update.UpdateMessage:
    """An UPDATE that makes ``owner``/``rtype`` hold exactly ``values`` (delete the RRset, then add)."""
    return update_message(zone, [RRsetChange(owner, rtype, ttl, tuple(values))], key)


def batches(changes: Sequence[RRsetChange]) -> list[list[RRsetChange]]:
    """As few UPDATEs as fit the message size; the RRsets of one owner always travel together."""
    by_owner: dict[str, list[RRsetChange]] = {}
    for change in changes:
        by_owner.setdefault(change.owner, []).append(change)
    result: list[list[RRsetChange]] = []
    current: list[RRsetChange] = []
    size = 0
    for group in by_owner.values():
        octets = sum(_estimate_octets(change) for change in group)
        if current and (size + octets > MAX_UPDATE_OCTETS or len(current) + len(group) > MAX_RRSETS_PER_UPDATE):
            result.append(current)
            current, size = [], 0
        current.extend(group)
        size += octets
    if current:
        result.append(current)
    return result


def _estimate_octets(change: RRsetChange) -> int:
    """An upper bound of the octets a change takes in an UPDATE (names uncompressed)."""
    name = len(change.owner) + 2
    values = [*change.values, *(change.expected or ())]
    rdata = sum(len(to_rdata(change.rtype, value).to_wire() or b"") for value in values)
    return name * (2 + len(values)) + 10 * (2 + len(values)) + rdata


def send_update(update: dns.update.UpdateMessage, server: Server) -> dns.rcode.Rcode:
    """Send over TCP and return the rcode (NOERROR); raise our errors for anything else."""
    started = time.perf_counter()
    outcome = "error"
    try:
        with _exchange(server):
            response = dns.query.tcp(update, _address(server), port=server.port, timeout=server.timeout_s)
        rcode = check_rcode(response.rcode())
        outcome = "ok"
        return rcode
    except DnsError as exc:
        outcome = exc.code
        raise
    finally:
        metrics.observe_update(time.perf_counter() - started, outcome)


@contextmanager
def _exchange(server: Server) -> Iterator[None]:
    """dnspython's exceptions of one signed exchange with ``server``, raised as ours."""
    try:
        yield
    except dns.exception.TooBig as exc:
        raise PermanentDnsError("the update does not fit in one DNS message", code="too_big") from exc
    except dns.tsig.PeerBadKey as exc:
        raise PermanentDnsError(
            "the server does not know our TSIG key (BADKEY): the key name differs from the server's",
            code="tsig_bad_key",
        ) from exc
    except dns.tsig.PeerBadSignature as exc:
        raise PermanentDnsError(
            "the server rejected our TSIG signature (BADSIG): the secret differs from the server's",
            code="tsig_bad_signature",
        ) from exc
    except (dns.tsig.PeerBadTime, dns.tsig.PeerBadTruncation) as exc:
        raise PermanentDnsError(
            f"the server rejected our TSIG signature ({type(exc).__name__}): check both clocks and the algorithm",
            code="tsig_rejected",
        ) from exc
    except dns.tsig.BadSignature as exc:
        raise PermanentDnsError(
            "the server's answer failed TSIG verification: the secret differs from the server's",
            code="tsig_bad_signature",
        ) from exc
    except dns.exception.Timeout as exc:
        raise TransientDnsError(
            f"no answer from {server.host}:{server.port} within {server.timeout_s:g} s", code="dns_timeout"
        ) from exc
    except (OSError, EOFError) as exc:  # refused, reset, unreachable, closed mid-answer
        raise TransientDnsError(
            f"cannot reach {server.host}:{server.port}: {exc.__class__.__name__}", code="dns_unreachable"
        ) from exc
    except dns.exception.DNSException as exc:
        raise TransientDnsError(f"bad answer from {server.host}:{server.port}: {exc}", code="dns_bad_answer") from exc


def check_rcode(rcode: dns.rcode.Rcode) -> dns.rcode.Rcode:
    if rcode == dns.rcode.NOERROR:
        return rcode
    if rcode == dns.rcode.SERVFAIL:
        raise TransientDnsError("the server failed to apply the update (SERVFAIL)", code="servfail")
    code, reason = _PERMANENT_RCODES.get(rcode, ("unexpected_rcode", f"the server answered {dns.rcode.to_text(rcode)}"))
    raise PermanentDnsError(reason, code=code)


def served_rrsets(keys: Sequence[tuple[str, str]], server: Server) -> dict[tuple[str, str], dns.rrset.RRset | None]:
    """What the server serves for each (owner, type), asked over one TCP connection.

    The queries are pipelined (RFC 7766 §6.2.1.1): up to ``PIPELINE_DEPTH`` are written before
    their answers are read, each answer matched to its query by message id.
    """
    served: dict[tuple[str, str], dns.rrset.RRset | None] = {}
    if not keys:
        return served
    address = _address(server)
    try:
        with socket.create_connection((address, server.port), timeout=server.timeout_s) as sock:
            sock.setblocking(False)
            for start in range(0, len(keys), PIPELINE_DEPTH):
                served.update(_ask_window(sock, keys[start : start + PIPELINE_DEPTH], server))
    except dns.exception.Timeout as exc:
        raise TransientDnsError(
            f"verification query timed out after {server.timeout_s:g} s", code="dns_timeout"
        ) from exc
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        raise TransientDnsError(f"verification query failed: {exc.__class__.__name__}", code="dns_unreachable") from exc
    return served


# Queries written on one connection before their answers are read: the answers stay well
# within the socket buffers.
PIPELINE_DEPTH = 128


def _ask_window(
    sock: socket.socket, keys: Sequence[tuple[str, str]], server: Server
) -> dict[tuple[str, str], dns.rrset.RRset | None]:
    """Write one query per key, then read every answer (in any order: matched by id)."""
    pending: dict[int, tuple[str, str]] = {}
    first = secrets.randbelow(65536)
    expiration = time.time() + server.timeout_s
    for offset, (owner, rtype) in enumerate(keys):
        query = dns.message.make_query(owner, rtype)
        query.flags &= ~dns.flags.RD
        query.id = (first + offset) % 65536
        pending[query.id] = (owner, rtype)
        dns.query.send_tcp(sock, query, expiration)
    found: dict[tuple[str, str], dns.rrset.RRset | None] = {}
    while pending:
        response, _ = dns.query.receive_tcp(sock, time.time() + server.timeout_s)
        key = pending.pop(response.id, None)
        if key is None:
            raise TransientDnsError("a verification answer matched no query", code="dns_bad_answer")
        found[key] = _served_in(response, *key)
    return found


def _served_in(response: dns.message.Message, owner: str, rtype: str) -> dns.rrset.RRset | None:
    if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise TransientDnsError(f"verification query answered {dns.rcode.to_text(response.rcode())}", code="servfail")
    name = dns.name.from_text(owner)
    rdtype = dns.rdatatype.from_text(rtype)
    # A delegation's NS RRset comes back as a referral, in the authority section, and the
    # glue below it in the additional section.
    for rrset in (*response.answer, *response.authority, *response.additional):
        if rrset.name == name and rrset.rdtype == rdtype:
            return rrset
    return None


# A whole transfer may take this many DNS timeouts (each of its messages must come within one).
TRANSFER_TIMEOUTS = 12

# Answers to an AXFR that say the transfer is not allowed: a person must act.
_REFUSED_TRANSFER = {
    dns.rcode.NOTAUTH: "the server is not authoritative for the zone or did not accept the TSIG key (NOTAUTH)",
    dns.rcode.REFUSED: "the server refused the zone transfer (REFUSED): its allow-transfer must name the zone's key",
}


def transfer(zone: str, key: TsigKey, server: Server) -> dict[tuple[str, str], dns.rdataset.Rdataset]:
    """Every RRset of ``zone`` as the server serves it: an AXFR over TCP, signed with ``key``.

    Keyed by (owner, type) as Hostmaster writes them: absolute names in lower case, the type's
    mnemonic. The whole transfer must end within ``TRANSFER_TIMEOUTS`` DNS timeouts.
    """
    keyring = _keyring(key)
    address = _address(server)
    transferred = dns.zone.Zone(zone, relativize=False)
    query, _serial = dns.xfr.make_query(transferred, keyring=keyring, keyname=dns.name.from_text(key.name))
    with _exchange(server):
        try:
            dns.query.inbound_xfr(
                address,
                transferred,
                query,
                port=server.port,
                timeout=server.timeout_s,
                lifetime=server.timeout_s * TRANSFER_TIMEOUTS,
            )
        except dns.xfr.TransferError as exc:
            if exc.rcode == dns.rcode.SERVFAIL:
                raise TransientDnsError("the server failed to transfer the zone (SERVFAIL)", code="servfail") from exc
            reason = _REFUSED_TRANSFER.get(
                exc.rcode, f"the server answered the zone transfer with {dns.rcode.to_text(exc.rcode)}"
            )
            raise PermanentDnsError(reason, code="transfer_refused") from exc
    return {
        (name.to_text().lower(), dns.rdatatype.to_text(rdataset.rdtype)): rdataset
        for name, rdataset in transferred.iterate_rdatasets()
    }


def matches(served: dns.rdataset.Rdataset | None, rtype: str, ttl: int, values: Sequence[str]) -> bool:
    """True when the server serves exactly ``values`` with ``ttl`` (an empty ``values`` means absent)."""
    if not values:
        return served is None or len(served) == 0
    if served is None:
        return False
    wanted = {to_rdata(rtype, value) for value in values}
    return set(served) == wanted and served.ttl == ttl


def served_text(served: dns.rdataset.Rdataset | None) -> str:
    """What the server serves, as a reason shows it: its values in order, or ``nothing``."""
    values = sorted(rdata.to_text() for rdata in served) if served is not None else []
    return str(values) if values else "nothing"


def _address(server: Server) -> str:
    """dnspython sends to addresses only: resolve a host name (a Kubernetes service, say) first."""
    try:
        ipaddress.ip_address(server.host)
    except ValueError:
        pass
    else:
        return server.host
    try:
        infos = socket.getaddrinfo(server.host, server.port, type=socket.SOCK_STREAM)
    except OSError as exc:  # socket.gaierror
        raise TransientDnsError(f"cannot resolve the primary {server.host}: {exc}", code="dns_unresolvable") from exc
    return str(infos[0][4][0])


def _keyring(key: TsigKey) -> dict[dns.name.Name, dns.tsig.Key]:
    name = dns.name.from_text(key.name)
    try:
        secret = base64.b64decode(key.secret, validate=True)
    except ValueError:  # binascii.Error; dnspython's own decoding would drop bad characters silently
        secret = b""
    if not secret:
        raise PermanentDnsError(f"the secret of TSIG key {key.name} is not valid base64", code="tsig_secret_invalid")
    algorithm = TSIG_ALGORITHMS.get(key.algorithm.lower())
    if algorithm is None:
        raise PermanentDnsError(f"TSIG algorithm {key.algorithm} is not supported", code="tsig_algorithm_unknown")
    return {name: dns.tsig.Key(name, secret, algorithm)}
