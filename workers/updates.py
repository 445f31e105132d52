"""Sending a zone's RRsets in as few UPDATEs as fit, and telling which of them failed and why.

The RRsets may come from many requests (workers/claim.py). One UPDATE succeeds or fails as a
whole, so a refusal must not fail the RRsets of every request that shared the message: a
failed prerequisite is classified RRset by RRset (drift, landed, ours), and any other refusal
that one RRset can cause (REFUSED by an update policy, NOTZONE, FORMERR, too big) is narrowed
down by sending each half again, until what fails belongs to a single request (or to one
owner name, which always travels whole). Refusals that concern the zone as a whole (TSIG,
NOTAUTH) fail every RRset of the message at once. A transient failure (timeout, SERVFAIL)
raises: the caller retries the zone as a whole.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from service.core.errors import PermanentDnsError
from workers import rfc2136

Key = tuple[str, str]
States = tuple[tuple[str, ...], ...]

# Refusals one RRset of a message can cause: worth sending the halves of a shared message again.
NARROWED = frozenset({"refused", "not_in_zone", "format_error", "too_big", "unexpected_rcode", "prerequisite_failed"})


@dataclass(frozen=True)
class Failure:
    code: str
    detail: str


@dataclass
class Sent:
    """What sending a zone's RRsets did: UPDATE messages sent, and the RRsets that failed."""

    messages: int = 0
    failures: dict[Key, Failure] = field(default_factory=dict)


class Primary(Protocol):
    """The zone's primary as the sender sees it: send one UPDATE, ask what RRsets it serves."""

    def update(self, changes: Sequence[rfc2136.RRsetChange]) -> None: ...

    def served(self, keys: Sequence[Key]) -> Mapping[Key, Any]: ...


class ZonePrimary:
    """The primary of ``zone`` at ``server``, updates signed with ``key``."""

    def __init__(self, zone: str, key: rfc2136.TsigKey, server: rfc2136.Server) -> None:
        self.zone = zone
        self.key = key
        self.server = server

    def update(self, changes: Sequence[rfc2136.RRsetChange]) -> None:
        rfc2136.send_update(rfc2136.update_message(self.zone, changes, self.key), self.server)

    def served(self, keys: Sequence[Key]) -> Mapping[Key, Any]:
        return rfc2136.served_rrsets(keys, self.server)


def send(
    primary: Primary,
    changes: Sequence[rfc2136.RRsetChange],
    requests_of: Callable[[Key], frozenset[uuid.UUID]],
    unconfirmed: Callable[[Sequence[Key]], Mapping[Key, States]],
) -> Sent:
    """Send ``changes`` (one per RRset) in as few UPDATEs as fit.

    ``requests_of`` names the requests each RRset belongs to; ``unconfirmed`` gives, only when
    a prerequisite failed, the states each RRset was sent since it was last seen to land.
    Raises TransientDnsError: the caller retries the zone as a whole.
    """
    sent = Sent()
    for message in rfc2136.batches(changes):
        _send(primary, message, requests_of, unconfirmed, sent, classified=False)
    return sent


def _send(
    primary: Primary,
    message: list[rfc2136.RRsetChange],
    requests_of: Callable[[Key], frozenset[uuid.UUID]],
    unconfirmed: Callable[[Sequence[Key]], Mapping[Key, States]],
    sent: Sent,
    *,
    classified: bool,
) -> None:
    sent.messages += 1
    try:
        primary.update(message)
        return
    except PermanentDnsError as exc:
        refusal = exc
    if refusal.code == "prerequisite_failed" and not classified:
        keys = [item.key for item in message]
        history = unconfirmed(keys)
        message = [replace(item, sent=history.get(item.key, ())) for item in message]
        drifted, landed, ours = classify_drift(message, primary.served(keys))
        sent.failures.update(drifted)
        rest = [
            replace(item, expected=ours[item.key]) if item.key in ours else item
            for item in message
            if item.key not in drifted and item.key not in landed
        ]
        if rest:
            _send(primary, rest, requests_of, unconfirmed, sent, classified=True)
        return
    halves = halves_of(message, requests_of) if refusal.code in NARROWED else None
    if halves is None:
        sent.failures.update({item.key: Failure(refusal.code, refusal.detail) for item in message})
        return
    for half in halves:
        _send(primary, half, requests_of, unconfirmed, sent, classified=False)


def halves_of(
    message: list[rfc2136.RRsetChange], requests_of: Callable[[Key], frozenset[uuid.UUID]]
) -> tuple[list[rfc2136.RRsetChange], list[rfc2136.RRsetChange]] | None:
    """The message in two, along owner names (one owner's RRsets travel together); None when
    it cannot be split or all it holds belongs to one request (which fails as a whole, as alone)."""
    requests: set[uuid.UUID] = set().union(*(requests_of(item.key) for item in message))
    owners = list(dict.fromkeys(item.owner for item in message))
    if len(requests) <= 1 or len(owners) <= 1:
        return None
    first = set(owners[: len(owners) // 2])
    return [item for item in message if item.owner in first], [item for item in message if item.owner not in first]


def classify_drift(
    batch: list[rfc2136.RRsetChange], served: Mapping[Key, Any]
) -> tuple[dict[Key, Failure], set[Key], dict[Key, tuple[str, ...]]]:
    """After a failed prerequisite: which RRsets drifted, which already hold what we want, and
    which hold a state Hostmaster sent earlier without seeing it land (with the values served,
    the prerequisite to send them again with).

    An RRset that already serves the desired values landed earlier (a lost answer, an attempt
    cut short): it is not drift and needs no resend. One that serves what an earlier, unanswered
    UPDATE of ours sent is ours too: it is sent again, expecting what it holds. One that serves
    none of these was changed behind our back.
    """
    drifted: dict[Key, Failure] = {}
    landed: set[Key] = set()
    ours: dict[Key, tuple[str, ...]] = {}
    for item in batch:
        found = served.get(item.key)
        if rfc2136.matches(found, item.rtype, item.ttl, item.values):
            landed.add(item.key)
            continue
        expected = item.expected or ()
        found_ttl = found.ttl if found is not None else 0
        if rfc2136.matches(found, item.rtype, found_ttl, expected):
            continue  # as we left it: this one's prerequisite held
        if any(rfc2136.matches(found, item.rtype, found_ttl, state) for state in item.sent):
            ours[item.key] = tuple(rdata.to_text() for rdata in found) if found is not None else ()
            continue
        drifted[item.key] = Failure(
            "drift_detected",
            f"{item.owner} {item.rtype} was changed on the server outside Hostmaster: it serves "
            f"{rfc2136.served_text(found)} where Hostmaster last applied {list(expected) or 'nothing'}; "
            "nothing was overwritten (set the zone's drift_policy to override to replace it)",
        )
    return drifted, landed, ours
