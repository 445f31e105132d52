"""Asking a BIND what it serves, as a user with dig would."""

from __future__ import annotations

import dns.message
import dns.query
import dns.rdatatype
import dns.rrset

from tests.conftest import Bind


def served_at(host: str, port: int, name: str, rtype: str) -> dns.rrset.RRset | None:
    query = dns.message.make_query(name, rtype)
    response = dns.query.tcp(query, host, port=port, timeout=5)
    for answer in response.answer:
        if answer.rdtype == dns.rdatatype.from_text(rtype):
            return answer
    return None


def served(bind: Bind, name: str, rtype: str) -> dns.rrset.RRset | None:
    return served_at(bind.host, bind.port, name, rtype)
