"""Rules a zone's desired state must keep after a change set, checked on the RRsets it touches.

Each broken rule is a violation (422) naming the field of the operation that broke it,
except a clash with an RRset the change set did not touch, which is a 409 naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from db.models import MAX_VALUES
from service.core.errors import Conflict, InvalidRequest, Violation
from service.dns.names import is_within
from service.dns.rdata import to_rdata, value_target
from service.dns.validation import zone_for_owner
from service.planning.desired import Content, DesiredState, Key

REVERSE_SUFFIXES = ("in-addr.arpa.", "ip6.arpa.")
TARGET_TYPES = ("MX", "SRV", "NS")
MAX_RRSET_OCTETS = 16_000  # an RRset travels twice in an UPDATE (prerequisite and add), under 65,535
# The most text an RRset's values may hold before they are parsed: \ddd writes an octet in 4
# characters, and quotes and spaces are fewer than one per octet; longer input is refused unread.
MAX_VALUES_TEXT = 5 * MAX_RRSET_OCTETS


def check(
    state: DesiredState, keys: Sequence[Key], *, field_of: Callable[[Key], str], max_values: int = MAX_VALUES
) -> None:
    violations: list[Violation] = []
    referrers = _Referrers(state)
    for key in keys:
        content = state.get(key)
        if content is not None:
            _check_rrset(state, key, content, field_of(key), violations, max_values)
        if key[1] in ("CNAME", "A", "AAAA"):
            _check_still_a_target(state, key, field_of(key), referrers, violations)
    if violations:
        raise InvalidRequest(violations)


class _Referrers:
    """Which MX, SRV and NS RRsets point at a name, built once, when first asked."""

    def __init__(self, state: DesiredState) -> None:
        self.state = state
        self.index: dict[str, list[Key]] | None = None

    def of(self, name: str) -> list[Key]:
        if self.index is None:
            self.index = {}
            for key, content in self.state.present(TARGET_TYPES):
                if key[1] in TARGET_TYPES:
                    for value in content.values:
                        if (target := value_target(key[1], value)) is not None:
                            self.index.setdefault(target, []).append(key)
        return self.index.get(name, [])


def _check_still_a_target(
    state: DesiredState, key: Key, field: str, referrers: _Referrers, violations: list[Violation]
) -> None:
    """A name that MX, SRV or NS records point at stays a host: no CNAME, and an address if in zone."""
    owner, rtype = key
    is_cname = rtype == "CNAME" and state.get(key) is not None
    if not is_cname and (state.get((owner, "A")) or state.get((owner, "AAAA"))):
        return  # still a host with an address: nothing pointing at it can mind (no need to look)
    pointing = referrers.of(owner)
    if not pointing:
        return
    by = f"{pointing[0][0]} {pointing[0][1]}"
    if is_cname:
        violations.append(
            Violation(f"{field}type", f"{owner} is the target of {by}; it cannot be a CNAME (RFC 2181 §10.3)")
        )
    elif rtype in ("A", "AAAA") and not (state.get((owner, "A")) or state.get((owner, "AAAA"))):
        zone = state.zone_of(owner)
        if zone is not None and _needs_address_here(state, owner, zone.name):
            violations.append(Violation(f"{field}name", f"{owner} is the target of {by}; it needs an A or AAAA record"))


def _check_rrset(
    state: DesiredState, key: Key, content: Content, field: str, violations: list[Violation], max_values: int
) -> None:
    owner, rtype = key
    zone = zone_for_owner(owner, list(state.zones.values()))
    if zone is None:
        return
    name = f"{owner} {rtype}"

    def violation(where: str, message: str) -> None:
        violations.append(Violation(f"{field}{where}", message))

    if not zone.min_ttl <= content.ttl <= zone.max_ttl:
        violation(
            "ttl", f"{content.ttl} is outside zone {zone.name}'s policy of {zone.min_ttl} to {zone.max_ttl} seconds"
        )
    if len(content.values) > max_values:
        violation("values", f"{name} would hold {len(content.values)} values; the limit is {max_values}")
    elif (octets := _wire_octets(owner, rtype, content)) > MAX_RRSET_OCTETS:
        violation("values", f"{name} would take {octets} octets in DNS; one RRset may take {MAX_RRSET_OCTETS}")
    if owner.startswith("*.") and not zone.allow_wildcards:
        violation("name", f"zone {zone.name} does not allow wildcard names")
    if rtype == "CNAME":
        if owner == zone.name:
            violation("type", f"a CNAME cannot be at the zone apex {zone.name} (RFC 1912 §2.4)")
        if len(content.values) > 1:
            violation("values", "a CNAME has exactly one value (RFC 2181 §10.1)")
    if rtype == "NS" and owner == zone.name:
        violation("name", "NS at the zone apex belongs to the zone's operator; Hostmaster manages delegations below it")
    if rtype == "PTR" and not zone.name.endswith(REVERSE_SUFFIXES):
        violation("type", f"PTR records belong in reverse zones (in-addr.arpa or ip6.arpa), not in {zone.name}")
    if rtype == "SRV" and not _is_service_name(owner, zone.name):
        violation("name", f"{owner} is not a service name: an SRV owner starts with _service._proto (RFC 2782)")

    _check_exclusive_cname(state, key, field, violations)
    _check_delegation(state, key, zone.name, field, violations)
    _check_delegation_point(state, key, zone.name, field, violations)
    if rtype in TARGET_TYPES:
        _check_targets(state, key, content, zone.name, field, violations)


def _check_exclusive_cname(state: DesiredState, key: Key, field: str, violations: list[Violation]) -> None:
    owner, rtype = key
    others = {other: content for other, content in state.types_at(owner).items() if other != rtype}
    if not others or (rtype != "CNAME" and "CNAME" not in others):
        return
    clash = "CNAME" if rtype != "CNAME" else sorted(others)[0]
    if state.is_untouched_stored((owner, clash)):
        raise Conflict(
            f"{owner} already holds {clash} records; a CNAME cannot share its name with other data (RFC 1034 §3.6.2)",
            code="cname_conflict",
        )
    violations.append(
        Violation(
            f"{field}type",
            f"{owner} would hold {'a CNAME beside ' + clash if rtype == 'CNAME' else rtype + ' beside a CNAME'} "
            "data; a CNAME stands alone (RFC 1034 §3.6.2)",
        )
    )


def delegation_of(state: DesiredState, name: str, zone_name: str, *, strictly_above: bool) -> str | None:
    """The delegation point (an NS RRset below the apex) at or above ``name``, if any."""
    labels = name.split(".")
    for cut in range(1 if strictly_above else 0, len(labels) - 1):
        parent = ".".join(labels[cut:])
        if parent == zone_name or not is_within(parent, zone_name):
            return None
        if state.get((parent, "NS")) is not None:
            return parent
    return None


def _check_delegation(state: DesiredState, key: Key, zone_name: str, field: str, violations: list[Violation]) -> None:
    """Nothing lives below a delegation but the glue its NS names."""
    owner, rtype = key
    parent = delegation_of(state, owner, zone_name, strictly_above=True)
    if parent is None:
        return
    delegation = state.get((parent, "NS"))
    targets = {value_target("NS", value) for value in delegation.values} if delegation else set()
    if rtype in ("A", "AAAA") and owner in targets:
        return  # glue
    violations.append(Violation(f"{field}name", f"{owner} is inside the delegation of {parent} to other servers"))


def _check_delegation_point(
    state: DesiredState, key: Key, zone_name: str, field: str, violations: list[Violation]
) -> None:
    """A delegation point holds its NS (and DS) records and nothing else (RFC 1034 §4.2.1)."""
    owner, rtype = key
    if owner == zone_name:
        return
    types = state.types_at(owner)
    if "NS" not in types:
        return
    others = sorted(other for other in types if other not in ("NS", "DS"))
    if rtype == "NS" and others:
        violations.append(
            Violation(
                f"{field}name", f"{owner} holds {', '.join(others)} data; a delegation point holds only NS and DS"
            )
        )
    elif rtype not in ("NS", "DS"):
        violations.append(
            Violation(f"{field}name", f"{owner} is delegated to other servers; it holds only NS and DS records")
        )


def _check_targets(
    state: DesiredState, key: Key, content: Content, zone_name: str, field: str, violations: list[Violation]
) -> None:
    rtype = key[1]
    for value in content.values:
        target = value_target(rtype, value)
        if target is None:
            continue
        if state.get((target, "CNAME")) is not None:
            violations.append(
                Violation(
                    f"{field}values", f"{rtype} target {target} is a CNAME; it must be a host name (RFC 2181 §10.3)"
                )
            )
        elif (_needs_address_here(state, target, zone_name) or _is_in_bailiwick_ns(rtype, key[0], target)) and not (
            state.get((target, "A")) or state.get((target, "AAAA"))
        ):
            violations.append(
                Violation(
                    f"{field}values",
                    f"{rtype} target {target} is in zone {zone_name} but has no A or AAAA record there; "
                    "add one in the same change set",
                )
            )


def _needs_address_here(state: DesiredState, target: str, zone_name: str) -> bool:
    """A target this zone serves itself (not another registered zone's, not below a delegation)."""
    target_zone = state.zone_of(target)
    if target_zone is None or target_zone.name != zone_name:
        return False
    return delegation_of(state, target, zone_name, strictly_above=False) is None


def _is_in_bailiwick_ns(rtype: str, owner: str, target: str) -> bool:
    """An NS whose server is inside the zone it delegates to needs glue (RFC 1034 §4.2.1)."""
    return rtype == "NS" and is_within(target, owner)


def _wire_octets(owner: str, rtype: str, content: Content) -> int:
    per_record = len(owner) + 2 + 10  # owner, type, class, TTL, length
    return sum(per_record + len(to_rdata(rtype, value).to_wire() or b"") for value in content.values)


def _is_service_name(owner: str, zone_name: str) -> bool:
    labels = owner.split(".")
    return len(labels) >= 3 and labels[0].startswith("_") and labels[1].startswith("_")
