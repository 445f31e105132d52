"""Reading the desired RRsets."""

from __future__ import annotations

from sqlmodel import Session, col, select

from db.models import RRset, Zone
from db.schemas import RecordPublic
from service.errors import InvalidRequest, Violation
from service.names import BadName, normalize_name, shown


def list_records(session: Session, *, zone: str | None = None, limit: int = 500) -> list[RecordPublic]:
    statement = select(RRset, Zone).join(Zone, col(Zone.id) == col(RRset.zone_id))
    if zone is not None:
        try:
            statement = statement.where(Zone.name == normalize_name(zone))
        except BadName as exc:
            raise InvalidRequest([Violation("zone", f"{shown(zone)} {exc}")]) from exc
    statement = statement.order_by(col(RRset.owner), col(RRset.rtype)).limit(limit)
    return [
        RecordPublic(
            zone=zone_row.name,
            name=rrset.owner,
            type=rrset.rtype,
            ttl=rrset.ttl,
            values=rrset.values,
            version=rrset.version,
            status=rrset.status,
            last_request_id=rrset.last_request_id,
            updated_at=rrset.updated_at,
        )
        for rrset, zone_row in session.exec(statement).all()
    ]
