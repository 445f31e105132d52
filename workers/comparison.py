"""What differs between a zone's desired RRsets and what its primary serves (workers/reconcile.py).

- SOA and the apex NS belong to the zone's operator, DNSSEC records to the signer: never compared.
- An RRset with a request in flight is skipped: that request makes it right.
- A desired RRset with values must be served with exactly those values and its TTL: else
  ``missing`` or ``different``. One without values (a delete that failed) must not be served:
  ``not_deleted``.
- A served RRset Hostmaster has no row for is ``unmanaged``: reported, never changed (the zone
  file's own name server addresses live there).

Values are compared as sets with ``rfc2136.matches``, as the apply verifies them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.rdataset

from db.models import DifferenceKind, ReconcileStatus
from service.planning.desired import Content, Key
from workers import rfc2136

# Types that are the zone's own, not data Hostmaster or anyone else provisions in it.
ZONE_TYPES = frozenset({"SOA", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "DNSKEY", "CDS", "CDNSKEY", "TYPE65534"})
DRIFT = frozenset({DifferenceKind.missing, DifferenceKind.different, DifferenceKind.not_deleted})


@dataclass(frozen=True)
class Desired:
    """One managed RRset as the comparison sees it; no values: it must be absent."""

    owner: str
    rtype: str
    ttl: int
    values: tuple[str, ...]
    in_flight: bool = False

    @property
    def key(self) -> Key:
        return (self.owner, self.rtype)


@dataclass
class Difference:
    owner: str
    rtype: str
    kind: DifferenceKind
    desired: Content | None
    served: Content | None
    repaired: bool = False
    error: str | None = None

    @property
    def key(self) -> Key:
        return (self.owner, self.rtype)

    def as_json(self) -> dict[str, Any]:
        """As ``DifferencePublic`` shows it."""
        return {
            "name": self.owner,
            "type": self.rtype,
            "kind": self.kind.value,
            "desired": self.desired.as_json() if self.desired else None,
            "served": self.served.as_json() if self.served else None,
            "repaired": self.repaired,
            "error": self.error,
        }


@dataclass
class Comparison:
    differences: list[Difference] = field(default_factory=list)
    compared: int = 0
    skipped: int = 0

    @property
    def drift(self) -> list[Difference]:
        return [difference for difference in self.differences if difference.kind in DRIFT]

    @property
    def status(self) -> ReconcileStatus:
        drift = self.drift
        if not drift:
            return ReconcileStatus.in_sync
        return ReconcileStatus.repaired if all(d.repaired for d in drift) else ReconcileStatus.drift


def compare(zone: str, desired: Iterable[Desired], served: Mapping[Key, dns.rdataset.Rdataset]) -> Comparison:
    """What differs between the desired RRsets of ``zone`` and what its primary serves."""
    result = Comparison()
    managed: set[Key] = set()
    for rrset in desired:
        managed.add(rrset.key)
        if rrset.in_flight:
            result.skipped += 1
            continue
        result.compared += 1
        found = served.get(rrset.key)
        if rfc2136.matches(found, rrset.rtype, rrset.ttl, rrset.values):
            continue
        wanted = Content(rrset.ttl, rrset.values) if rrset.values else None
        if not rrset.values:
            kind = DifferenceKind.not_deleted
        elif found is None or len(found) == 0:
            kind = DifferenceKind.missing
        else:
            kind = DifferenceKind.different
        result.differences.append(Difference(rrset.owner, rrset.rtype, kind, wanted, content(found)))
    for key, found in served.items():
        if key not in managed and not _zone_own(zone, key):
            result.differences.append(Difference(*key, DifferenceKind.unmanaged, None, content(found)))
    result.differences.sort(key=lambda difference: difference.key)
    return result


def content(served: dns.rdataset.Rdataset | None) -> Content | None:
    if served is None or len(served) == 0:
        return None
    return Content.of(served.ttl, (rdata.to_text() for rdata in served))


def _zone_own(zone: str, key: Key) -> bool:
    owner, rtype = key
    return rtype in ZONE_TYPES or (rtype == "NS" and owner == zone)
