"""A pass's work: the requests it claimed, their changes, their RRset rows (locked) and their zones."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from db.models import ChangeStatus, Zone, utcnow
from workers.claim import Claimed
from workers.updates import Failure, Key

_CHANGES = text(
    """
    SELECT id, request_id, seq, zone_id, owner, rtype, version, status, error_code, error_detail, action
    FROM request_change WHERE request_id = ANY(CAST(:ids AS uuid[])) ORDER BY id
    """
)
_LOCK_RRSETS = text(
    """
    SELECT id, owner, rtype, ttl, values, version, applied FROM rrset
    WHERE (owner, rtype) IN (
        SELECT owner, rtype FROM request_change WHERE request_id = ANY(CAST(:ids AS uuid[])) AND status = 'pending')
    ORDER BY id FOR UPDATE
    """
)


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first delivery
    final: bool  # no retry follows a transient failure of this attempt


@dataclass(frozen=True)
class Change:
    id: int
    request_id: uuid.UUID
    seq: int
    zone_id: int | None
    owner: str
    rtype: str
    version: int
    status: str
    error_code: str | None
    error_detail: str | None
    action: str = "create"  # create, update or delete

    @property
    def key(self) -> Key:
        return (self.owner, self.rtype)


@dataclass(frozen=True)
class Row:
    """An RRset row as locked: its desired state and what was last proven served."""

    id: int
    owner: str
    rtype: str
    ttl: int
    values: list[str]
    version: int
    applied: dict[str, Any] | None


@dataclass
class ZoneResult:
    """How one zone of a pass went: the RRsets that failed, and what it took."""

    zone: Zone
    keys: list[Key]
    failures: dict[Key, Failure]
    messages: int
    sent_at: datetime
    verified_at: datetime
    ms: float
    requests: int
    verified_by: str = "queries"  # or "transfer": one AXFR


@dataclass
class Pass:
    claimed: Claimed
    changes: list[Change]
    rows: dict[Key, Row]
    zones: dict[int, Zone]
    started_at: datetime = field(default_factory=utcnow)

    def pending(self, zone_id: int | None = None) -> list[Change]:
        return [
            change
            for change in self.changes
            if change.status == ChangeStatus.pending and (zone_id is None or change.zone_id == zone_id)
        ]


def load(session: Session, claimed: Claimed) -> Pass:
    """The claimed requests' changes, their RRset rows (locked, in id order) and their zones."""
    ids = [str(request_id) for request_id in claimed.request_ids]
    changes = [Change(*row) for row in session.execute(_CHANGES, {"ids": ids}).all()]
    rows = {(row.owner, row.rtype): Row(*row) for row in session.execute(_LOCK_RRSETS, {"ids": ids}).all()}
    zone_ids = {change.zone_id for change in changes if change.zone_id is not None and change.status == "pending"}
    zones = (
        {zone.id: zone for zone in session.exec(select(Zone).where(col(Zone.id).in_(zone_ids))).all()}
        if zone_ids
        else {}
    )
    return Pass(claimed, changes, rows, {zone_id: zone for zone_id, zone in zones.items() if zone_id is not None})
