"""The tables: registered zones, desired RRsets, the request tracker and reconciliation reports.

Statuses and steps are stored as short strings (not PostgreSQL enums) so that
adding a value is a code change, not a migration that locks a table.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

MAX_TTL = 2**31 - 1  # RFC 2181 §8
MAX_VALUES = 100  # values in one RRset, unless HOSTMASTER_MAX_VALUES says otherwise


def utcnow() -> datetime:
    return datetime.now(UTC)


class RRsetStatus(StrEnum):
    pending = "pending"  # desired values not yet applied
    deleting = "deleting"  # desired absent, not yet applied; the row goes once it is
    active = "active"  # served as desired, proven by a query
    error = "error"  # the last apply failed; the request says why


class DriftPolicy(StrEnum):
    fail = "fail"  # a change made on the server behind our back fails the request: drift_detected
    override = "override"  # our desired state wins


class ReconcilePolicy(StrEnum):
    report = "report"  # reconciliation reports what differs from the desired state
    repair = "repair"  # and sends the desired state again where an RRset is missing or different


class ReconcileTrigger(StrEnum):
    periodic = "periodic"  # the schedule of `hostmaster run recovery`
    on_demand = "on_demand"  # an admin asked (API or CLI)


class ReconcileStatus(StrEnum):
    queued = "queued"
    running = "running"
    in_sync = "in_sync"  # the server serves the desired state (unmanaged RRsets aside)
    drift = "drift"  # some RRsets differ, and were not (all) repaired
    repaired = "repaired"  # some RRsets differed; all were repaired
    error = "error"  # the zone could not be read; ``error`` says why

    @property
    def finished(self) -> bool:
        return self not in (ReconcileStatus.queued, ReconcileStatus.running)


class DifferenceKind(StrEnum):
    missing = "missing"  # desired, not served
    different = "different"  # served with other values or another TTL
    not_deleted = "not_deleted"  # deleted in the desired state (a failed delete), still served
    unmanaged = "unmanaged"  # served, and Hostmaster has no row for it: reported, never touched


class ChangeAction(StrEnum):
    create = "create"
    update = "update"
    delete = "delete"


class ChangeStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    superseded = "superseded"  # a later request changed the RRset again first; its state was applied
    failed = "failed"


class RequestStatus(StrEnum):
    received = "received"
    rejected = "rejected"
    queued = "queued"
    in_progress = "in_progress"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"

    @property
    def terminal(self) -> bool:
        return self in (RequestStatus.rejected, RequestStatus.succeeded, RequestStatus.failed)


class Step(StrEnum):
    """One step of a request's life, recorded as a request_event row."""

    received = "received"
    validated = "validated"
    rejected = "rejected"
    queued = "queued"
    enqueue_failed = "enqueue_failed"
    requeued = "requeued"
    redriven = "redriven"
    started = "started"
    dns_sent = "dns_sent"
    dns_verified = "dns_verified"
    retry_scheduled = "retry_scheduled"
    dead_lettered = "dead_lettered"
    succeeded = "succeeded"
    failed = "failed"


class Source(StrEnum):
    api = "api"
    kafka = "kafka"


class ZoneBase(SQLModel):
    name: str = Field(max_length=255, description="Absolute zone name, lower case, with the trailing dot.")
    primary_host: str = Field(max_length=255, description="Address of the zone's primary (RFC 2136 UPDATE target).")
    primary_port: int = Field(default=53, ge=1, le=65535)
    tsig_key_name: str = Field(max_length=255, description="Name of the TSIG key; its secret is never stored here.")
    tsig_algorithm: str = Field(default="hmac-sha256", max_length=32)
    min_ttl: int = Field(default=60, ge=0, le=MAX_TTL)
    max_ttl: int = Field(default=86400, ge=0, le=MAX_TTL)
    default_ttl: int = Field(default=3600, ge=0, le=MAX_TTL)
    allow_wildcards: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    drift_policy: DriftPolicy = Field(
        default=DriftPolicy.fail, sa_type=sa.String(16), sa_column_kwargs={"server_default": "fail"}
    )
    mass_change_share: float = Field(
        default=0.3,
        ge=0,
        le=1,
        sa_column_kwargs={"server_default": "0.3"},
        description="A change set that deletes or rewrites more than this share of the zone's RRsets "
        "(when it has at least 10) is refused unless forced.",
    )
    reconcile: ReconcilePolicy = Field(
        default=ReconcilePolicy.report,
        sa_type=sa.String(16),
        sa_column_kwargs={"server_default": "report"},
        description="What reconciliation does with an RRset the server serves otherwise than desired: "
        "`report` it, or `repair` it (send the desired state again). Unmanaged RRsets are only reported.",
    )


class Zone(ZoneBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


CREATED_AND_EXISTING = "created_by IS NOT NULL AND \"values\" <> '[]'::jsonb"  # an index-only count


class RRset(SQLModel, table=True):
    """Desired state of one RRset (owner name + type) in a zone."""

    __table_args__ = (
        sa.UniqueConstraint("owner", "rtype", name="uq_rrset_owner_rtype"),
        # The RRsets a client created that exist, counted against its quota (service/registry/quotas.py).
        sa.Index("ix_rrset_created_by", "created_by", postgresql_where=sa.text(CREATED_AND_EXISTING)),
    )

    id: int | None = Field(default=None, primary_key=True)
    zone_id: int = Field(foreign_key="zone.id", index=True)
    owner: str = Field(max_length=255, index=True)
    rtype: str = Field(max_length=10)
    ttl: int
    values: list[str] = Field(sa_type=JSONB)  # empty: desired absent (status deleting)
    version: int = Field(default=1)
    status: str = Field(default=RRsetStatus.pending, max_length=16)
    ptr: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    applied: dict[str, Any] | None = Field(default=None, sa_type=JSONB)  # {ttl, values} last proven served
    last_request_id: uuid.UUID | None = Field(default=None)
    created_by: str | None = Field(default=None, max_length=64)  # the client whose quota it counts against
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class Request(SQLModel, table=True):
    """The request tracker: one row per request, written before anything can fail."""

    __table_args__ = (
        sa.Index(
            "uq_request_client_idempotency_key",
            "client",
            "idempotency_key",
            unique=True,
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        ),
        # The requests a worker may claim with another of their zone (workers/claim.py), oldest first.
        sa.Index(
            "ix_request_waiting_zone",
            "zone_id",
            "created_at",
            postgresql_where=sa.text("status IN ('queued', 'retrying')"),
        ),
        # The ended requests the recovery job prunes past their retention (service/operations/retention.py).
        sa.Index(
            "ix_request_ended_at",
            "updated_at",
            postgresql_where=sa.text("status IN ('succeeded', 'failed', 'rejected')"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    source: str = Field(default=Source.api, max_length=16)
    client: str | None = Field(default=None, max_length=255)
    idempotency_key: str | None = Field(default=None, max_length=255)
    payload_hash: str | None = Field(default=None, max_length=64)  # tells a repeat from a different request
    operation: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    status: str = Field(default=RequestStatus.received, max_length=16, index=True)
    attempts: int = Field(default=0)
    error_code: str | None = Field(default=None, max_length=64)
    error_detail: str | None = Field(default=None)
    zone_id: int | None = Field(default=None, foreign_key="zone.id", ondelete="SET NULL")
    kafka_topic: str | None = Field(default=None, max_length=255)
    kafka_partition: int | None = Field(default=None)
    kafka_offset: int | None = Field(default=None, sa_type=sa.BigInteger)
    # When its result went to the results topic (requests from Kafka): published once, whatever redelivers.
    announced_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class RequestEvent(SQLModel, table=True):
    """One step of a request, in the order it happened (by id)."""

    __tablename__ = "request_event"

    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    request_id: uuid.UUID = Field(foreign_key="request.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    step: str = Field(max_length=32)
    component: str = Field(max_length=16)
    client: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)


class RequestChange(SQLModel, table=True):
    """One RRset a request changes: what it was, what it becomes, and how that went.

    Owner and type are copied, not referenced: the RRset row of a delete is gone once applied.
    """

    __tablename__ = "request_change"
    # An RRset's changes since a version (workers/history.py: what may be served without being seen to land).
    __table_args__ = (sa.Index("ix_request_change_rrset_version", "owner", "rtype", "version"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=sa.BigInteger)
    request_id: uuid.UUID = Field(foreign_key="request.id", index=True)
    seq: int
    zone_id: int | None = Field(default=None, foreign_key="zone.id", ondelete="SET NULL", index=True)
    zone: str = Field(max_length=255)  # its name, kept when the zone is unregistered later
    owner: str = Field(max_length=255)
    rtype: str = Field(max_length=10)
    action: str = Field(max_length=16)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    version: int
    status: str = Field(default=ChangeStatus.pending, max_length=16)
    error_code: str | None = Field(default=None, max_length=64)
    error_detail: str | None = Field(default=None)


class Scope(StrEnum):
    read = "read"  # see RRsets and requests in granted zones
    write = "write"  # change RRsets in granted zones
    admin = "admin"  # everything: zones, clients, every request
    delegate = "delegate"  # nothing by itself; acts for a named client (X-On-Behalf-Of), with that client's rights


class ApiClient(SQLModel, table=True):
    """Someone who calls the API: a name, a hashed key, scopes, the zones granted and its quotas.

    ``zones`` holds grants: ``example.test.`` for that zone only, ``*.example.test.`` for it and
    every zone below it, ``*`` for all zones. A quota left empty is the service's default
    (service/registry/quotas.py); ``usage_day`` and ``changes_on_day`` count the changes of one UTC day.
    """

    __tablename__ = "api_client"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    key_id: str = Field(max_length=32, unique=True)  # the public part of the key, to find it
    key_hash: str = Field(max_length=128)  # HMAC-SHA256 of the whole key with the pepper
    scopes: list[str] = Field(default_factory=list, sa_type=JSONB)
    zones: list[str] = Field(default_factory=list, sa_type=JSONB)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    rotated_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    max_rrsets: int | None = Field(default=None)
    max_changes_per_day: int | None = Field(default=None)
    usage_day: date | None = Field(default=None)
    changes_on_day: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ConsoleSession(SQLModel, table=True):
    """A browser signed in to the console (service/console/sessions.py): the SHA-256 of the random
    token its cookie holds (never the token, never the API key), whose client, until when."""

    __tablename__ = "console_session"

    id: str = Field(primary_key=True, max_length=64)
    client_id: int = Field(foreign_key="api_client.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)


class Reconciliation(SQLModel, table=True):
    """One reconciliation of a zone: its transfer compared with the desired state, and what was repaired.

    The zone's name is copied, not only referenced: a report outlives the zone's registration.
    ``differences`` holds one ``DifferencePublic`` (db/schemas.py) per RRset that differs.
    """

    __tablename__ = "zone_reconciliation"
    __table_args__ = (sa.Index("ix_zone_reconciliation_zone_id_requested_at", "zone_id", "requested_at"),)

    id: int | None = Field(default=None, primary_key=True)
    zone_id: int | None = Field(default=None, foreign_key="zone.id", ondelete="SET NULL")
    zone: str = Field(max_length=255)
    trigger: str = Field(max_length=16)
    repair: bool
    requested_by: str | None = Field(default=None, max_length=255)  # the API client or "cli"; none when periodic
    status: str = Field(default=ReconcileStatus.queued, max_length=16)
    attempts: int = Field(default=0)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    started_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    compared: int = Field(default=0)  # managed RRsets compared
    skipped: int = Field(default=0)  # managed RRsets with a request in flight: not compared
    drifted: int = Field(default=0)  # missing, different or not deleted
    repaired: int = Field(default=0)  # of those, repaired and proven by a query
    unmanaged: int = Field(default=0)
    differences: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB)
    error: str | None = Field(default=None)
