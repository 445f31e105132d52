"""Telling drift from an update that already landed, after a failed prerequisite."""

from __future__ import annotations

import dns.rrset

from workers.rfc2136 import RRsetChange
from workers.updates import classify_drift

WWW = ("www.example.test.", "A")


def served(*values: str, ttl: int = 300) -> dns.rrset.RRset:
    return dns.rrset.from_text_list("www.example.test.", ttl, "IN", "A", list(values))


def change(values: tuple[str, ...], expected: tuple[str, ...]) -> RRsetChange:
    return RRsetChange("www.example.test.", "A", 300, values, expected)


def test_a_server_holding_what_we_want_is_landed_not_drift() -> None:
    drifted, landed, _ = classify_drift([change(("192.0.2.2",), ("192.0.2.1",))], {WWW: served("192.0.2.2")})

    assert drifted == {}
    assert landed == {WWW}


def test_a_delete_that_already_landed_is_not_drift() -> None:
    drifted, landed, _ = classify_drift([change((), ("192.0.2.1",))], {WWW: None})

    assert drifted == {}
    assert landed == {WWW}


def test_a_server_holding_what_we_last_applied_is_neither() -> None:
    drifted, landed, _ = classify_drift([change(("192.0.2.2",), ("192.0.2.1",))], {WWW: served("192.0.2.1", ttl=60)})

    assert (drifted, landed) == ({}, set())


def test_a_server_holding_something_else_is_drift_and_says_what_it_serves() -> None:
    drifted, landed, _ = classify_drift([change(("192.0.2.2",), ("192.0.2.1",))], {WWW: served("192.0.2.99")})

    assert landed == set()
    assert drifted[WWW].code == "drift_detected"
    assert "192.0.2.99" in drifted[WWW].detail
    assert "192.0.2.1" in drifted[WWW].detail


def test_a_record_made_behind_our_back_where_we_expected_none_is_drift() -> None:
    drifted, _, _ = classify_drift([change(("192.0.2.2",), ())], {WWW: served("192.0.2.7")})

    assert drifted[WWW].code == "drift_detected"


def test_a_state_we_sent_without_seeing_it_land_is_ours_and_is_sent_again_expecting_it() -> None:
    # An UPDATE for 192.0.2.1 landed but its answer was lost (the primary stopped); the RRset
    # has since been asked to hold 192.0.2.2. Hostmaster last *saw* nothing applied.
    item = RRsetChange("www.example.test.", "A", 300, ("192.0.2.2",), (), sent=(("192.0.2.1",), ("192.0.2.2",)))

    drifted, landed, ours = classify_drift([item], {WWW: served("192.0.2.1")})

    assert (drifted, landed) == ({}, set())
    assert ours == {WWW: ("192.0.2.1",)}


def test_a_state_nobody_sent_is_still_drift_when_others_were_unconfirmed() -> None:
    item = RRsetChange("www.example.test.", "A", 300, ("192.0.2.2",), (), sent=(("192.0.2.1",),))

    drifted, _, ours = classify_drift([item], {WWW: served("192.0.2.66")})

    assert set(drifted) == {WWW}
    assert ours == {}
