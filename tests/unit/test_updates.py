"""Sending the RRsets of many requests in shared UPDATEs: what one RRset's refusal costs the others."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import dns.rrset

from service.core.errors import PermanentDnsError
from workers.rfc2136 import RRsetChange
from workers.updates import Key, States, halves_of, send

ZONE = "example.test."


class FakePrimary:
    """A primary that refuses every UPDATE holding one of ``refused`` owners, and serves ``serving``."""

    def __init__(
        self, refused: Sequence[str] = (), code: str = "refused", serving: Mapping[Key, Any] | None = None
    ) -> None:
        self.refused = set(refused)
        self.code = code
        self.serving = dict(serving or {})
        self.messages: list[list[Key]] = []

    def update(self, changes: Sequence[RRsetChange]) -> None:
        self.messages.append([change.key for change in changes])
        if self.code == "prerequisite_failed":
            held = [c for c in changes if c.expected is not None and not self._holds(c.key, c.expected)]
            if held:
                raise PermanentDnsError("a prerequisite failed", code=self.code)
        elif any(change.owner in self.refused for change in changes):
            raise PermanentDnsError("the server refused the update (REFUSED)", code=self.code)
        for change in changes:
            self.serving[change.key] = a_rrset(change.owner, *change.values) if change.values else None

    def served(self, keys: Sequence[Key]) -> Mapping[Key, Any]:
        return {key: self.serving.get(key) for key in keys}

    def _holds(self, key: Key, values: tuple[str, ...]) -> bool:
        found = self.serving.get(key)
        return sorted(rdata.to_text() for rdata in found) == sorted(values) if found else not values


def a_rrset(owner: str, *addresses: str) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(owner, 300, "IN", "A", list(addresses))


def a_change(owner: str, address: str, expected: tuple[str, ...] | None = None) -> RRsetChange:
    return RRsetChange(owner, "A", 300, (address,), expected)


def one_request_each(changes: Sequence[RRsetChange]) -> dict[Key, frozenset[uuid.UUID]]:
    return {change.key: frozenset({uuid.uuid4()}) for change in changes}


def nothing_unconfirmed(keys: Sequence[Key]) -> dict[Key, States]:
    return {}


def test_the_rrsets_of_many_requests_go_in_one_update() -> None:
    changes = [a_change(f"h{index}.{ZONE}", "192.0.2.1") for index in range(300)]
    primary = FakePrimary()

    sent = send(primary, changes, one_request_each(changes).__getitem__, nothing_unconfirmed)

    assert (sent.messages, sent.failures) == (1, {})
    assert len(primary.messages[0]) == 300


def test_a_refused_rrset_fails_alone_and_the_others_are_sent_again_in_halves() -> None:
    changes = [a_change(f"h{index}.{ZONE}", "192.0.2.1") for index in range(16)]
    primary = FakePrimary(refused=[f"h5.{ZONE}"])

    sent = send(primary, changes, one_request_each(changes).__getitem__, nothing_unconfirmed)

    assert set(sent.failures) == {(f"h5.{ZONE}", "A")}
    assert sent.failures[(f"h5.{ZONE}", "A")].code == "refused"
    assert sent.messages == 1 + 2 * 4  # the whole, then two halves at each of four levels
    for index in range(16):
        if index != 5:
            assert primary.serving[(f"h{index}.{ZONE}", "A")] is not None


def test_the_rrsets_of_one_request_fail_together_as_when_it_was_alone() -> None:
    changes = [a_change(f"h{index}.{ZONE}", "192.0.2.1") for index in range(4)]
    request = frozenset({uuid.uuid4()})
    primary = FakePrimary(refused=[f"h1.{ZONE}"])

    sent = send(primary, changes, lambda _key: request, nothing_unconfirmed)

    assert sent.messages == 1
    assert set(sent.failures) == {change.key for change in changes}


def test_a_refusal_of_the_whole_zone_is_not_sent_again() -> None:
    changes = [a_change(f"h{index}.{ZONE}", "192.0.2.1") for index in range(8)]
    primary = FakePrimary(refused=[change.owner for change in changes], code="tsig_bad_signature")

    sent = send(primary, changes, one_request_each(changes).__getitem__, nothing_unconfirmed)

    assert sent.messages == 1
    assert {failure.code for failure in sent.failures.values()} == {"tsig_bad_signature"}
    assert len(sent.failures) == 8


def test_drift_of_one_rrset_fails_it_alone_and_the_rest_is_sent_again_once() -> None:
    drifted = f"drifted.{ZONE}"
    changes = [a_change(drifted, "192.0.2.2", expected=("192.0.2.1",))]
    changes += [a_change(f"h{index}.{ZONE}", "192.0.2.3", expected=()) for index in range(5)]
    primary = FakePrimary(code="prerequisite_failed", serving={(drifted, "A"): a_rrset(drifted, "192.0.2.66")})

    sent = send(primary, changes, one_request_each(changes).__getitem__, nothing_unconfirmed)

    assert set(sent.failures) == {(drifted, "A")}
    assert sent.failures[(drifted, "A")].code == "drift_detected"
    assert sent.messages == 2
    assert primary.messages[1] == [change.key for change in changes[1:]]


def test_halves_keep_each_owner_whole_and_stop_at_one_request() -> None:
    owner = f"www.{ZONE}"
    changes = [
        RRsetChange(owner, "A", 300, ("192.0.2.1",)),
        RRsetChange(owner, "TXT", 300, ('"x"',)),
        a_change(f"mail.{ZONE}", "192.0.2.2"),
    ]
    requests = one_request_each(changes)

    halves = halves_of(changes, requests.__getitem__)

    assert halves is not None
    assert [[change.key for change in half] for half in halves] == [
        [(owner, "A"), (owner, "TXT")],
        [(f"mail.{ZONE}", "A")],
    ]
    assert halves_of(changes[:2], requests.__getitem__) is None  # one owner: nothing to split
    shared = frozenset({uuid.uuid4()})
    assert halves_of(changes, lambda _key: shared) is None  # one request: it fails as a whole


def test_a_state_sent_earlier_and_never_confirmed_is_ours_and_is_sent_again_expecting_it() -> None:
    """The history is read only after a prerequisite failed, and only for that message's RRsets."""
    owner = f"lost.{ZONE}"
    changes = [a_change(owner, "192.0.2.3", expected=("192.0.2.1",)), a_change(f"ok.{ZONE}", "192.0.2.4", expected=())]
    primary = FakePrimary(code="prerequisite_failed", serving={(owner, "A"): a_rrset(owner, "192.0.2.2")})
    asked: list[list[Key]] = []

    def unconfirmed(keys: Sequence[Key]) -> dict[Key, States]:
        asked.append(list(keys))
        return {(owner, "A"): (("192.0.2.2",),)}

    sent = send(primary, changes, one_request_each(changes).__getitem__, unconfirmed)

    assert sent.failures == {}
    assert asked == [[(owner, "A"), (f"ok.{ZONE}", "A")]]
    assert primary.messages[1] == [(owner, "A"), (f"ok.{ZONE}", "A")]
    assert [rdata.to_text() for rdata in primary.serving[(owner, "A")]] == ["192.0.2.3"]


def test_no_history_is_read_when_every_update_is_taken() -> None:
    changes = [a_change(f"h{index}.{ZONE}", "192.0.2.1") for index in range(3)]

    def unconfirmed(keys: Sequence[Key]) -> dict[Key, States]:
        raise AssertionError("read the history without a failed prerequisite")

    assert send(FakePrimary(), changes, one_request_each(changes).__getitem__, unconfirmed).failures == {}
