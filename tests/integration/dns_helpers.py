"""Asking a BIND what it serves, as a user with dig would."""

from __future__ import annotations

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring
import dns.update

from tests.support import KEY, Bind


def served_at(host: str, port: int, name: str, rtype: str) -> dns.rrset.RRset | None:
    query = dns.message.make_query(name, rtype)
    response = dns.query.tcp(query, host, port=port, timeout=5)
    for rrset in (*response.answer, *response.authority, *response.additional):  # referral and glue
        if rrset.rdtype == dns.rdatatype.from_text(rtype) and rrset.name == dns.name.from_text(name):
            return rrset
    return None


def served(bind: Bind, name: str, rtype: str) -> dns.rrset.RRset | None:
    return served_at(bind.host, bind.port, name, rtype)


def change_outside_hostmaster(bind: Bind, zone: str, name: str, rtype: str, values: list[str], ttl: int = 300) -> None:
    """What an operator with nsupdate would do behind Hostmaster's back: replace an RRset."""
    update = dns.update.UpdateMessage(
        zone, keyring=dns.tsigkeyring.from_text({KEY: bind.secret(KEY)}), keyalgorithm="hmac-sha256"
    )
    update.replace(name if name.endswith(".") else name + ".", ttl, rtype, *values)
    assert dns.query.tcp(update, bind.host, port=bind.port, timeout=5).rcode() == dns.rcode.NOERROR


def delete_outside_hostmaster(bind: Bind, zone: str, name: str, rtype: str) -> None:
    """An operator's nsupdate behind Hostmaster's back: delete an RRset."""
    update = dns.update.UpdateMessage(
        zone, keyring=dns.tsigkeyring.from_text({KEY: bind.secret(KEY)}), keyalgorithm="hmac-sha256"
    )
    update.delete(name if name.endswith(".") else name + ".", rtype)
    assert dns.query.tcp(update, bind.host, port=bind.port, timeout=5).rcode() == dns.rcode.NOERROR


def texts(rrset: dns.rrset.RRset | None) -> list[str]:
    return sorted(rdata.to_text() for rdata in rrset) if rrset is not None else []
