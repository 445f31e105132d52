"""Automatic PTR records for A and AAAA RRsets that ask for them (``ptr: true``).

For each address of such an RRset, the PTR at its reverse name points back at the owner,
when a reverse zone holding that name is registered. Addresses that leave the RRset (a
replace, a remove, a delete) take their PTR with them, if it still points at the owner.
A PTR that holds other names keeps them: only the owner is added or taken away.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.reversename

from db.models import Zone
from service.dns.validation import zone_for_owner
from service.planning.desired import Content, DesiredState, Key, Operation

REVERSE_SUFFIXES = ("in-addr.arpa.", "ip6.arpa.")


def reverse_zones(zones: Sequence[Zone]) -> list[Zone]:
    return [zone for zone in zones if zone.name.endswith(REVERSE_SUFFIXES)]


def names_touched(state: DesiredState, zones: Sequence[Zone], operations: Sequence[Operation]) -> set[str]:
    """The reverse names whose PTRs the A and AAAA RRsets of ``operations`` may touch: their
    new addresses and those they hold now (read already), in registered reverse zones."""
    reverse = reverse_zones(zones)
    names: set[str] = set()
    for operation in operations:
        if operation.rtype not in ("A", "AAAA"):
            continue
        row = state.stored.get((operation.owner, operation.rtype))
        wanted = operation.ptr if operation.ptr is not None else bool(row and row.ptr)
        held = row.values if row is not None and row.ptr and row.values else ()  # as play() reads them
        for address in {*(operation.values if wanted else ()), *held}:
            name = dns.reversename.from_address(address).to_text()
            if zone_for_owner(name, reverse) is not None:
                names.add(name)
    return names


def play(state: DesiredState, zones: Sequence[Zone], keys: Sequence[Key], wanted: dict[Key, bool]) -> dict[Key, Key]:
    """Play the PTR changes that ``keys`` call for on ``state``.

    Returns each PTR key touched, with the A or AAAA key that called for it (in order).
    """
    reverse = reverse_zones(zones)
    touched: dict[Key, Key] = {}
    if not reverse:
        return touched
    for key in keys:
        owner, rtype = key
        if rtype not in ("A", "AAAA"):
            continue
        row = state.stored.get(key)
        before = state.stored_content(key) if row is not None and row.ptr else None
        after = state.get(key) if wanted.get(key) else None
        old = set(before.values) if before else set()
        new = set(after.values) if after else set()
        ttl = after.ttl if after else (before.ttl if before else 3600)
        for address in sorted(old - new):
            _point(state, reverse, address, owner, ttl, add=False, touched=touched, origin=key)
        for address in sorted(new):
            _point(state, reverse, address, owner, ttl, add=True, touched=touched, origin=key)
    return touched


def _point(
    state: DesiredState,
    reverse: Sequence[Zone],
    address: str,
    owner: str,
    ttl: int,
    *,
    add: bool,
    touched: dict[Key, Key],
    origin: Key,
) -> None:
    name = dns.reversename.from_address(address).to_text()
    if zone_for_owner(name, reverse) is None:
        return  # no registered reverse zone holds this address
    key = (name, "PTR")
    current = state.get(key)
    values = set(current.values) if current else set()
    if add == (owner in values):
        return
    values = values | {owner} if add else values - {owner}
    state.assign(key, Content.of(current.ttl if current else ttl, values) if values else None)
    touched.setdefault(key, origin)
