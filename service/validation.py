"""Validation of a record request: every violation is collected, each with its field.

Syntax is checked first without the database; placement (which registered zone holds
the owner, the zone's TTL policy) is checked against the zones it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from db.models import MAX_TTL, Zone
from db.schemas import RecordCreate
from service.errors import InvalidRequest, Violation
from service.names import BadName, is_within, normalize_name, shown
from service.rdata import SUPPORTED_TYPES, BadValue, normalize_value

MAX_VALUES = 100
UNDERSCORE_TYPES = frozenset({"TXT", "CNAME"})


@dataclass(frozen=True)
class DesiredRRset:
    """A validated RRset, normalised, placed in its zone."""

    zone: Zone
    owner: str
    rtype: str
    ttl: int
    values: tuple[str, ...]


def validate_record(record: RecordCreate, zones: Sequence[Zone]) -> DesiredRRset:
    """Return the RRset ``record`` asks for, or raise InvalidRequest listing every violation."""
    violations: list[Violation] = []
    rtype = record.type.strip().upper()
    if rtype not in SUPPORTED_TYPES:
        violations.append(
            Violation("type", f"{shown(record.type)} is not supported; use one of {', '.join(SUPPORTED_TYPES)}")
        )

    owner = None
    try:
        owner = normalize_name(record.name, allow_underscore=rtype in UNDERSCORE_TYPES, allow_wildcard=True)
    except BadName as exc:
        violations.append(Violation("name", f"{shown(record.name)} {exc}"))

    values = _validate_values(rtype, record.values, violations)

    if record.ttl is not None and not 0 <= record.ttl <= MAX_TTL:
        violations.append(Violation("ttl", f"must be between 0 and {MAX_TTL} seconds"))

    zone = None
    if owner is not None:
        zone = zone_for_owner(owner, zones)
        if zone is None:
            violations.append(Violation("name", f"{owner} is not inside any zone registered with Hostmaster"))
        elif rtype == "CNAME" and owner == zone.name:
            violations.append(Violation("type", f"a CNAME cannot be at the zone apex {zone.name} (RFC 1912 §2.4)"))

    ttl = record.ttl
    if zone is not None:
        if ttl is None:
            ttl = zone.default_ttl
        elif 0 <= ttl <= MAX_TTL and not zone.min_ttl <= ttl <= zone.max_ttl:
            violations.append(
                Violation(
                    "ttl", f"{ttl} is outside zone {zone.name}'s policy of {zone.min_ttl} to {zone.max_ttl} seconds"
                )
            )

    if violations:
        raise InvalidRequest(violations)
    assert zone is not None
    assert owner is not None
    assert ttl is not None
    return DesiredRRset(zone=zone, owner=owner, rtype=rtype, ttl=ttl, values=values)


def _validate_values(rtype: str, raw_values: list[str], violations: list[Violation]) -> tuple[str, ...]:
    if not raw_values:
        violations.append(Violation("values", "must hold at least one value"))
        return ()
    if len(raw_values) > MAX_VALUES:
        violations.append(Violation("values", f"holds {len(raw_values)} values; the limit is {MAX_VALUES}"))
        return ()
    if rtype == "CNAME" and len(raw_values) > 1:
        violations.append(Violation("values", "a CNAME has exactly one value (RFC 2181 §10.1)"))
    if rtype not in SUPPORTED_TYPES:
        return ()
    normalised: list[str] = []
    for index, raw in enumerate(raw_values):
        try:
            value = normalize_value(rtype, raw)
        except BadValue as exc:
            violations.append(Violation(f"values[{index}]", str(exc)))
            continue
        if value in normalised:
            violations.append(Violation(f"values[{index}]", f"repeats {value}; an RRset holds each value once"))
            continue
        normalised.append(value)
    return tuple(sorted(normalised))


def zone_for_owner(owner: str, zones: Sequence[Zone]) -> Zone | None:
    """The registered zone closest to ``owner`` (the longest matching suffix)."""
    matches = [zone for zone in zones if is_within(owner, zone.name)]
    return max(matches, key=lambda zone: len(zone.name), default=None)


def violations_from_pydantic(exc: ValidationError) -> list[Violation]:
    return [
        Violation(field_path(error["loc"]), error["msg"])
        for error in exc.errors(include_url=False, include_input=False)
    ]


def field_path(location: Sequence[int | str]) -> str:
    """A JSON path as the violations name it: ``values[1]``, ``zone.name``, or ``body``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"
