"""Reconciliation without a server: what counts as a difference, and which zones are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dns.rdataset

from db.models import DifferenceKind, ReconcileStatus
from service.operations.reconciliation import due
from service.planning.desired import Content
from workers.comparison import Comparison, Desired, Difference, compare

ZONE = "example.test."
WWW = ("www.example.test.", "A")


def rdataset(rtype: str, ttl: int, *values: str) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_text("IN", rtype, ttl, *values)


def zone_file(**extra: dns.rdataset.Rdataset) -> dict[tuple[str, str], dns.rdataset.Rdataset]:
    """What a fresh zone serves (SOA, apex NS, the name server's address), plus ``extra`` by 'owner rtype'."""
    served = {
        (ZONE, "SOA"): rdataset("SOA", 300, "ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60"),
        (ZONE, "NS"): rdataset("NS", 300, "ns1.example.test."),
        ("ns1.example.test.", "A"): rdataset("A", 300, "127.0.0.1"),
    }
    for key, found in extra.items():
        owner, rtype = key.split()
        served[(owner, rtype)] = found
    return served


def kinds(comparison: Comparison) -> list[tuple[str, str, DifferenceKind]]:
    return [(d.owner, d.rtype, d.kind) for d in comparison.differences]


def test_a_zone_serving_the_desired_state_is_in_sync_with_its_own_records_reported_as_unmanaged() -> None:
    desired = [
        Desired("www.example.test.", "A", 300, ("192.0.2.1", "192.0.2.2")),
        Desired(ZONE, "MX", 3600, ("10 mail.example.test.",)),
        Desired("txt.example.test.", "TXT", 300, ('"v=spf1 -all"',)),
    ]
    served = zone_file(
        **{
            "www.example.test. A": rdataset("A", 300, "192.0.2.2", "192.0.2.1"),  # another order
            "example.test. MX": rdataset("MX", 3600, "10 MAIL.Example.Test."),  # another case
            "txt.example.test. TXT": rdataset("TXT", 300, '"v=spf1 -all"'),
        }
    )

    comparison = compare(ZONE, desired, served)

    assert comparison.status == ReconcileStatus.in_sync
    assert (comparison.compared, comparison.skipped) == (3, 0)
    assert kinds(comparison) == [("ns1.example.test.", "A", DifferenceKind.unmanaged)]  # never SOA or apex NS
    assert comparison.differences[0].served == Content(300, ("127.0.0.1",))
    assert comparison.differences[0].desired is None


def test_missing_different_values_and_different_ttl_are_drift_with_both_sides() -> None:
    desired = [
        Desired("gone.example.test.", "A", 300, ("192.0.2.1",)),
        Desired("www.example.test.", "A", 300, ("192.0.2.1",)),
        Desired("ttl.example.test.", "TXT", 300, ('"x"',)),
    ]
    served = zone_file(
        **{
            "www.example.test. A": rdataset("A", 300, "192.0.2.1", "192.0.2.99"),
            "ttl.example.test. TXT": rdataset("TXT", 60, '"x"'),
        }
    )

    comparison = compare(ZONE, desired, served)

    assert comparison.status == ReconcileStatus.drift
    assert [difference.as_json() for difference in comparison.drift] == [
        {
            "name": "gone.example.test.",
            "type": "A",
            "kind": "missing",
            "desired": {"ttl": 300, "values": ["192.0.2.1"]},
            "served": None,
            "repaired": False,
            "error": None,
        },
        {
            "name": "ttl.example.test.",
            "type": "TXT",
            "kind": "different",
            "desired": {"ttl": 300, "values": ['"x"']},
            "served": {"ttl": 60, "values": ['"x"']},
            "repaired": False,
            "error": None,
        },
        {
            "name": "www.example.test.",
            "type": "A",
            "kind": "different",
            "desired": {"ttl": 300, "values": ["192.0.2.1"]},
            "served": {"ttl": 300, "values": ["192.0.2.1", "192.0.2.99"]},
            "repaired": False,
            "error": None,
        },
    ]


def test_txt_strings_are_compared_as_the_apply_verifies_them() -> None:
    """One 6-octet string is not two 3-octet strings on the wire, whatever the text looks like."""
    desired = [Desired("txt.example.test.", "TXT", 300, ('"abc" "def"',))]

    same = compare(ZONE, desired, zone_file(**{"txt.example.test. TXT": rdataset("TXT", 300, '"abc" "def"')}))
    joined = compare(ZONE, desired, zone_file(**{"txt.example.test. TXT": rdataset("TXT", 300, '"abcdef"')}))

    assert same.drift == []
    assert [d.kind for d in joined.drift] == [DifferenceKind.different]


def test_a_failed_delete_still_served_is_not_deleted_and_one_gone_is_in_sync() -> None:
    tombstone = Desired("old.example.test.", "A", 300, ())

    served = compare(ZONE, [tombstone], zone_file(**{"old.example.test. A": rdataset("A", 300, "192.0.2.7")}))
    gone = compare(ZONE, [tombstone], zone_file())

    assert [(d.kind, d.desired, d.served) for d in served.drift] == [
        (DifferenceKind.not_deleted, None, Content(300, ("192.0.2.7",)))
    ]
    assert gone.drift == []
    assert gone.status == ReconcileStatus.in_sync


def test_an_rrset_with_a_request_in_flight_is_skipped_not_drift_and_not_unmanaged() -> None:
    desired = [Desired("www.example.test.", "A", 300, ("192.0.2.2",), in_flight=True)]

    comparison = compare(ZONE, desired, zone_file(**{"www.example.test. A": rdataset("A", 300, "192.0.2.1")}))

    assert (comparison.compared, comparison.skipped) == (0, 1)
    assert kinds(comparison) == [("ns1.example.test.", "A", DifferenceKind.unmanaged)]


def test_a_delegation_is_data_but_dnssec_records_belong_to_the_zone() -> None:
    served = zone_file(
        **{
            "child.example.test. NS": rdataset("NS", 300, "ns.example.net."),
            "example.test. DNSKEY": rdataset("DNSKEY", 300, "257 3 13 AAAA"),
            "example.test. NSEC": rdataset("NSEC", 300, "ns1.example.test. NS SOA RRSIG NSEC DNSKEY"),
        }
    )

    comparison = compare(ZONE, [Desired("child.example.test.", "NS", 300, ("ns.example.net.",))], served)

    assert kinds(comparison) == [("ns1.example.test.", "A", DifferenceKind.unmanaged)]
    assert comparison.compared == 1


def test_a_run_that_repaired_every_difference_says_repaired_and_one_that_did_not_says_drift() -> None:
    def difference(owner: str, *, repaired: bool) -> Difference:
        return Difference(owner, "A", DifferenceKind.missing, Content(300, ("192.0.2.1",)), None, repaired=repaired)

    unmanaged = Difference("ns1.example.test.", "A", DifferenceKind.unmanaged, None, Content(300, ("127.0.0.1",)))

    assert Comparison([difference("a.", repaired=True), unmanaged]).status == ReconcileStatus.repaired
    assert (
        Comparison([difference("a.", repaired=True), difference("b.", repaired=False)]).status == ReconcileStatus.drift
    )


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_zones_never_reconciled_or_reconciled_an_interval_ago_are_due_in_name_order() -> None:
    latest = {
        "b.test.": None,
        "a.test.": NOW - timedelta(seconds=300),
        "recent.test.": NOW - timedelta(seconds=299),
        "old.test.": NOW - timedelta(days=1),
    }

    assert due(latest, now=NOW, interval_s=300) == ["a.test.", "b.test.", "old.test."]


def test_an_interval_of_zero_reconciles_only_on_demand() -> None:
    assert due({"a.test.": None}, now=NOW, interval_s=0) == []
