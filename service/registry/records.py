"""Reading the desired RRsets: one, or a filtered list a page at a time."""

from __future__ import annotations

import base64
import binascii
import json

from sqlmodel import Session, col, select, tuple_

from db.models import RRset, RRsetStatus, Scope, Zone
from db.schemas import RecordPage, RecordPublic
from service.core.errors import InvalidRequest, NotFound, Violation
from service.dns.names import BadName, normalize_name, shown
from service.dns.rdata import SUPPORTED_TYPES
from service.dns.validation import zone_for_owner
from service.registry.clients import Principal


def get_record(session: Session, principal: Principal, *, name: str, rtype: str) -> RecordPublic:
    owner = _name("name", name, not_found=True)
    zone = zone_for_owner(owner, list(session.exec(select(Zone)).all()))
    if zone is None:
        raise NotFound(f"{owner} is in no registered zone", code="rrset_not_found")
    principal.require(Scope.read, [zone.name])  # before saying whether the RRset exists
    if rtype.upper() not in SUPPORTED_TYPES:
        raise NotFound(f"no RRset has the type {shown(rtype)}", code="rrset_not_found")
    statement = select(RRset, Zone).join(Zone, col(Zone.id) == col(RRset.zone_id))
    found = session.exec(statement.where(RRset.owner == owner, RRset.rtype == rtype.upper())).first()
    if found is None:
        raise NotFound(f"the RRset {owner} {rtype.upper()} does not exist", code="rrset_not_found")
    return _public(*found)


def list_records(
    session: Session,
    principal: Principal,
    *,
    zone: str | None = None,
    name: str | None = None,
    rtype: str | None = None,
    status: RRsetStatus | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> RecordPage:
    """RRsets ordered by owner and type; ``cursor`` continues after the last one of a page."""
    principal.require(Scope.read)
    statement = select(RRset, Zone).join(Zone, col(Zone.id) == col(RRset.zone_id))
    if not principal.admin:  # only the zones granted to the client
        granted = [found.id for found in session.exec(select(Zone)).all() if principal.grants(found.name)]
        statement = statement.where(col(RRset.zone_id).in_(granted))
    if zone is not None:
        statement = statement.where(Zone.name == _name("zone", zone))
    if name is not None:
        statement = statement.where(RRset.owner == _name("name", name))
    if rtype is not None:
        if rtype.strip().upper() not in SUPPORTED_TYPES:
            raise InvalidRequest(
                [Violation("type", f"{shown(rtype)} is not a type; use one of {', '.join(SUPPORTED_TYPES)}")]
            )
        statement = statement.where(RRset.rtype == rtype.strip().upper())
    if status is not None:
        statement = statement.where(RRset.status == status)
    if cursor is not None:
        after_owner, after_type = _decode(cursor)
        statement = statement.where(tuple_(col(RRset.owner), col(RRset.rtype)) > tuple_(after_owner, after_type))
    rows = session.exec(statement.order_by(col(RRset.owner), col(RRset.rtype)).limit(limit + 1)).all()
    items = [_public(rrset, zone_row) for rrset, zone_row in rows[:limit]]
    next_cursor = _encode(items[-1].name, items[-1].type) if len(rows) > limit else None
    return RecordPage(items=items, next_cursor=next_cursor)


def _public(rrset: RRset, zone: Zone) -> RecordPublic:
    return RecordPublic(
        zone=zone.name,
        name=rrset.owner,
        type=rrset.rtype,
        ttl=rrset.ttl,
        values=rrset.values,
        ptr=rrset.ptr,
        version=rrset.version,
        status=rrset.status,
        last_request_id=rrset.last_request_id,
        updated_at=rrset.updated_at,
    )


def _name(field: str, text: str, *, not_found: bool = False) -> str:
    try:
        return normalize_name(text, allow_underscore=True, allow_wildcard=True)
    except BadName as exc:
        if not_found:
            raise NotFound(f"no RRset is named {shown(text)}", code="rrset_not_found") from exc
        raise InvalidRequest([Violation(field, f"{shown(text)} {exc}")]) from exc


def _encode(owner: str, rtype: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([owner, rtype]).encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, str]:
    try:
        owner, rtype = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(owner, str) and isinstance(rtype, str) and rtype in SUPPORTED_TYPES:
            return normalize_name(owner, allow_underscore=True, allow_wildcard=True), rtype
    except (binascii.Error, ValueError, TypeError):  # BadName is a ValueError
        pass
    raise InvalidRequest([Violation("cursor", "is not a cursor this API gave out; start again without one")])
