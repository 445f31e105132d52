"""Registering the zones Hostmaster may change, and finding them again."""

from __future__ import annotations

import ipaddress
import logging

import dns.tsig
from pydantic import ValidationError
from sqlmodel import Session, col, func, or_, select

from db.models import RRset, Zone
from db.schemas import ZoneCreate, ZonePublic, ZoneUpdate
from service.core.errors import Conflict, InvalidRequest, NotFound, Violation
from service.dns.names import BadName, normalize_name, shown
from service.dns.validation import violations_from_pydantic
from service.registry.unique import commit_unique

logger = logging.getLogger(__name__)

TSIG_ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
}


def register_zone(session: Session, zone_in: ZoneCreate, *, update_existing: bool = False) -> Zone:
    """Add a zone (or, with ``update_existing``, change a registered zone's primary, key and policy).

    Its TSIG secret is looked up by key name when a worker needs it, never stored.
    """
    zone = _validated(zone_in)
    existing = session.exec(select(Zone).where(Zone.name == zone.name)).first()
    if existing is None:
        _refuse_overlap(session, zone.name)
    if existing is not None:
        if not update_existing:
            raise Conflict(f"zone {zone.name} is already registered", code="zone_exists")
        for field in ZoneCreate.model_fields:
            if field != "name":
                setattr(existing, field, getattr(zone, field))
        zone = existing
    commit_unique(session, zone, Conflict(f"zone {zone.name} is already registered", code="zone_exists"))
    logger.info("zone %s registered, primary %s:%d", zone.name, zone.primary_host, zone.primary_port)
    return zone


def _refuse_overlap(session: Session, name: str) -> None:
    """A new zone inside a registered one may not take over RRsets Hostmaster manages there."""
    inside = or_(col(RRset.owner) == name, func.right(col(RRset.owner), len(name) + 1) == "." + name)
    held = session.exec(select(func.count()).select_from(RRset).where(inside)).one()
    if held:
        raise Conflict(
            f"{held} RRsets Hostmaster manages in a parent zone lie at or below {name}; "
            "delete them there before registering the zone",
            code="zone_overlaps_records",
        )


def _validated(zone_in: ZoneCreate) -> Zone:
    violations: list[Violation] = []
    name = key_name = ""
    try:
        name = normalize_name(zone_in.name)
    except BadName as exc:
        violations.append(Violation("name", f"{shown(zone_in.name)} {exc}"))
    try:
        key_name = normalize_name(zone_in.tsig_key_name, allow_underscore=True)
    except BadName as exc:
        violations.append(Violation("tsig_key_name", f"{shown(zone_in.tsig_key_name)} {exc}"))
    host = zone_in.primary_host.strip("[]")
    if "%" in host or any(ord(ch) < 0x21 for ch in host):
        violations.append(
            Violation("primary_host", f"{shown(zone_in.primary_host)} may not hold a zone index or spaces")
        )
    elif not _is_ip_address(host):
        try:
            normalize_name(host)
        except BadName:
            violations.append(
                Violation("primary_host", f"{shown(zone_in.primary_host)} is neither an IP address nor a host name")
            )
    algorithm = zone_in.tsig_algorithm.lower()
    if algorithm not in TSIG_ALGORITHMS:
        violations.append(Violation("tsig_algorithm", f"use one of {', '.join(TSIG_ALGORITHMS)}"))
    if not zone_in.min_ttl <= zone_in.default_ttl <= zone_in.max_ttl:
        violations.append(Violation("default_ttl", "must lie between min_ttl and max_ttl"))
    if violations:
        raise InvalidRequest(violations)
    return Zone(
        name=name,
        primary_host=host,
        primary_port=zone_in.primary_port,
        tsig_key_name=key_name,
        tsig_algorithm=algorithm,
        min_ttl=zone_in.min_ttl,
        max_ttl=zone_in.max_ttl,
        default_ttl=zone_in.default_ttl,
        allow_wildcards=zone_in.allow_wildcards,
        drift_policy=zone_in.drift_policy,
        mass_change_share=zone_in.mass_change_share,
        reconcile=zone_in.reconcile,
    )


def update_zone(session: Session, name: str, changes: ZoneUpdate) -> Zone:
    """Change what ``changes`` sets; the result is validated like a new zone."""
    zone = get_zone(session, name)
    current = {field: getattr(zone, field) for field in ZoneCreate.model_fields}
    try:
        merged = ZoneCreate.model_validate({**current, **changes.model_dump(exclude_unset=True)})
    except ValidationError as exc:  # an explicit null for a field that must have a value
        raise InvalidRequest(violations_from_pydantic(exc)) from None
    checked = _validated(merged)
    for field in changes.model_dump(exclude_unset=True):
        setattr(zone, field, getattr(checked, field))
    session.add(zone)
    session.commit()
    session.refresh(zone)
    logger.info("zone %s updated: %s", zone.name, ", ".join(changes.model_dump(exclude_unset=True)))
    return zone


def delete_zone(session: Session, name: str) -> None:
    """Unregister a zone; refused while Hostmaster still manages RRsets in it."""
    zone = get_zone(session, name)
    held = rrset_count(session, zone)
    if held:
        raise Conflict(f"zone {zone.name} still holds {held} RRsets; delete them first", code="zone_not_empty")
    session.delete(zone)
    session.commit()
    logger.info("zone %s unregistered", zone.name)


def rrset_count(session: Session, zone: Zone) -> int:
    statement = select(func.count()).select_from(RRset).where(RRset.zone_id == zone.id)
    return int(session.exec(statement).one())


def public(session: Session, zone: Zone) -> ZonePublic:
    fields = {name: getattr(zone, name) for name in ZonePublic.model_fields if name != "rrsets"}
    return ZonePublic.model_validate({**fields, "rrsets": rrset_count(session, zone)})


def list_zones(session: Session) -> list[Zone]:
    return list(session.exec(select(Zone).order_by(col(Zone.name))).all())


def get_zone(session: Session, name: str) -> Zone:
    try:
        absolute = normalize_name(name)
    except BadName as exc:
        raise NotFound(f"no zone is named {name!r}", code="zone_not_found") from exc
    zone = session.exec(select(Zone).where(Zone.name == absolute)).first()
    if zone is None:
        raise NotFound(f"zone {absolute} is not registered", code="zone_not_found")
    return zone


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True
