"""What the API takes and returns, as SQLModel (pydantic) models beside the tables."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from db.models import MAX_TTL, DifferenceKind, DriftPolicy, ReconcilePolicy, ReconcileStatus, ReconcileTrigger, ZoneBase

Operation = Literal["create", "upsert", "delete", "add", "remove"]
# An Idempotency-Key (header, batch field, Kafka header): 1 to 255 printable ASCII characters, the
# whole value — match with fullmatch, since `$` would let a trailing newline through.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")

_NAME = "Owner name, absolute (the trailing dot is optional)."
_VALUES = (
    'Values in presentation format (`10 mail.example.test.` for MX, `0 issue "ca.example"` for CAA). '
    "A TXT value that does not start with a double quote is literal text, split into 255-octet strings."
)
_PTR = "For A and AAAA: keep a PTR record in the matching registered reverse zone."


class _Strict(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


class RecordCreate(_Strict):
    """A request for one RRset: every value of one owner name and type."""

    name: str = Field(description=_NAME, schema_extra={"examples": ["www.example.test"]})
    type: str = Field(
        description="Record type: A, AAAA, CAA, CNAME, MX, NS, PTR, SRV or TXT.", schema_extra={"examples": ["A"]}
    )
    values: list[str] = Field(description=_VALUES, schema_extra={"examples": [["192.0.2.10"]]})
    ttl: int | None = Field(
        default=None, description="Seconds; the zone's default when omitted.", schema_extra={"examples": [300]}
    )
    ptr: bool = Field(default=False, description=_PTR)


class RecordReplace(_Strict):
    """The new content of one RRset (PUT): its values replace all earlier ones."""

    values: list[str] = Field(description=_VALUES, schema_extra={"examples": [["192.0.2.11", "192.0.2.12"]]})
    ttl: int | None = Field(default=None, description="Seconds; the current TTL (or the zone's default) when omitted.")
    ptr: bool | None = Field(default=None, description=_PTR + " Omitted: as the RRset had it.")


class ChangeIn(_Strict):
    """One operation of a change set, on one RRset (owner name and type).

    - `create`: the RRset must not exist yet; `values` required.
    - `upsert`: the RRset holds exactly `values` afterwards, created if absent.
    - `delete`: the RRset must exist; it is removed.
    - `add`: `values` are added (the RRset is created if absent).
    - `remove`: `values` are removed; the RRset goes when none is left.
    """

    op: Operation
    name: str = Field(description=_NAME)
    type: str
    values: list[str] | None = Field(default=None, description=_VALUES)
    ttl: int | None = Field(default=None)
    ptr: bool | None = Field(default=None, description=_PTR + " Omitted: as the RRset had it.")


class ChangeSetIn(_Strict):
    changes: list[ChangeIn] = Field(description="Validated together, applied all or nothing in the desired state.")
    dry_run: bool = Field(default=False, description="Return the plan and change nothing.")
    force: bool = Field(default=False, description="Pass the mass-change guard of the zone.")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "changes": [
                        {"op": "upsert", "name": "www.example.test", "type": "A", "values": ["192.0.2.10"], "ttl": 300},
                        {"op": "add", "name": "example.test", "type": "MX", "values": ["10 mail.example.test."]},
                        {"op": "delete", "name": "old.example.test", "type": "CNAME"},
                    ],
                    "dry_run": True,
                }
            ]
        },
    )


class RRsetContent(SQLModel):
    ttl: int
    values: list[str]


class PlannedChange(SQLModel):
    zone: str
    name: str
    type: str
    action: Literal["create", "update", "delete"]
    before: RRsetContent | None
    after: RRsetContent | None


class ChangePublic(PlannedChange):
    status: str
    error_code: str | None
    error_detail: str | None


class Plan(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "dry_run": True,
                    "changes": [
                        {
                            "zone": "example.test.",
                            "name": "www.example.test.",
                            "type": "A",
                            "action": "update",
                            "before": {"ttl": 300, "values": ["192.0.2.10"]},
                            "after": {"ttl": 300, "values": ["192.0.2.11"]},
                        }
                    ],
                }
            ]
        }
    )

    dry_run: bool
    changes: list[PlannedChange]


class RecordPublic(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "zone": "example.test.",
                    "name": "www.example.test.",
                    "type": "A",
                    "ttl": 300,
                    "values": ["192.0.2.10"],
                    "ptr": False,
                    "version": 2,
                    "status": "active",
                    "last_request_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "updated_at": "2026-11-26T12:00:00Z",
                }
            ]
        }
    )

    zone: str
    name: str
    type: str
    ttl: int
    values: list[str]
    ptr: bool
    version: int
    status: str
    last_request_id: uuid.UUID | None
    updated_at: datetime


class RecordPage(SQLModel):
    items: list[RecordPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class RequestAccepted(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "request_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "status": "queued",
                    "status_url": "http://127.0.0.1:8000/api/v1/requests/7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "changes": [
                        {
                            "zone": "example.test.",
                            "name": "www.example.test.",
                            "type": "A",
                            "action": "create",
                            "before": None,
                            "after": {"ttl": 300, "values": ["192.0.2.10"]},
                        }
                    ],
                }
            ]
        }
    )

    request_id: uuid.UUID
    status: str
    status_url: str
    changes: list[PlannedChange] = Field(default_factory=list)


class RequestEventPublic(SQLModel):
    at: datetime
    step: str
    component: str
    client: str | None = Field(default=None, description="The API client the step was done for.")
    detail: dict[str, Any]


class RequestPublic(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "request_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "source": "api",
                    "client": None,
                    "operation": "record.create",
                    "payload": {"name": "www.example.test", "type": "A", "values": ["192.0.2.10"]},
                    "status": "succeeded",
                    "attempts": 1,
                    "error_code": None,
                    "error_detail": None,
                    "created_at": "2026-11-26T12:00:00.000Z",
                    "updated_at": "2026-11-26T12:00:00.150Z",
                    "changes": [
                        {
                            "zone": "example.test.",
                            "name": "www.example.test.",
                            "type": "A",
                            "action": "create",
                            "before": None,
                            "after": {"ttl": 3600, "values": ["192.0.2.10"]},
                            "status": "succeeded",
                            "error_code": None,
                            "error_detail": None,
                        }
                    ],
                    "events": [
                        {"at": "2026-11-26T12:00:00.001Z", "step": "received", "component": "api", "detail": {}},
                        {
                            "at": "2026-11-26T12:00:00.150Z",
                            "step": "succeeded",
                            "component": "worker",
                            "detail": {"attempts": 1},
                        },
                    ],
                }
            ]
        }
    )

    request_id: uuid.UUID
    source: str
    client: str | None
    operation: str
    payload: dict[str, Any]
    status: str
    attempts: int
    error_code: str | None
    error_detail: str | None
    created_at: datetime
    updated_at: datetime
    changes: list[ChangePublic]
    events: list[RequestEventPublic]


class ZoneCreate(ZoneBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "example.test",
                    "primary_host": "127.0.0.1",
                    "primary_port": 15353,
                    "tsig_key_name": "hostmaster-key",
                    "min_ttl": 60,
                    "max_ttl": 86400,
                    "default_ttl": 3600,
                    "allow_wildcards": True,
                    "drift_policy": "fail",
                    "mass_change_share": 0.3,
                    "reconcile": "report",
                }
            ]
        },
    )


class ZoneUpdate(_Strict):
    """The zone's primary, key and policy; what is omitted stays as it is."""

    primary_host: str | None = Field(default=None, max_length=255)
    primary_port: int | None = Field(default=None, ge=1, le=65535)
    tsig_key_name: str | None = Field(default=None, max_length=255)
    tsig_algorithm: str | None = Field(default=None, max_length=32)
    min_ttl: int | None = Field(default=None, ge=0, le=MAX_TTL)
    max_ttl: int | None = Field(default=None, ge=0, le=MAX_TTL)
    default_ttl: int | None = Field(default=None, ge=0, le=MAX_TTL)
    allow_wildcards: bool | None = None
    drift_policy: DriftPolicy | None = None
    mass_change_share: float | None = Field(default=None, ge=0, le=1)
    reconcile: ReconcilePolicy | None = None


class ZonePublic(ZoneBase):
    id: int
    created_at: datetime
    rrsets: int = Field(default=0, description="RRsets Hostmaster manages in the zone.")


class ViolationPublic(SQLModel):
    field: str = Field(schema_extra={"examples": ["values[0]"]})
    message: str = Field(schema_extra={"examples": ["'192.0.2.300' is not an IPv4 address in dotted-quad form"]})


class Problem(SQLModel):
    """An error, as RFC 9457 application/problem+json."""

    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:hostmaster:problem:invalid",
                    "title": "Unprocessable Entity",
                    "status": 422,
                    "detail": "the request is not valid: changes[0].values[0], changes[1].name",
                    "code": "invalid",
                    "request_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "violations": [
                        {"field": "changes[0].values[0]", "message": "'192.0.2.300' is not an IPv4 address"},
                        {"field": "changes[1].name", "message": "'a..example.test' has an empty label"},
                    ],
                }
            ]
        }
    )

    type: str = Field(schema_extra={"examples": ["urn:hostmaster:problem:invalid"]})
    title: str = Field(schema_extra={"examples": ["Unprocessable Entity"]})
    status: int = Field(schema_extra={"examples": [422]})
    detail: str = Field(schema_extra={"examples": ["the request is not valid: values[0]"]})
    code: str = Field(description="Stable, machine-readable reason.", schema_extra={"examples": ["invalid"]})
    request_id: uuid.UUID | None
    violations: list[ViolationPublic] | None = Field(default=None, description="For 422: every bad field.")


_MAX_RRSETS = "RRsets the client may have created; null: the service's default (HOSTMASTER_QUOTA_RRSETS)."
_MAX_CHANGES = (
    "Changes the client's writes may hold in one UTC day; null: the service's default "
    "(HOSTMASTER_QUOTA_CHANGES_PER_DAY)."
)


class ClientCreate(_Strict):
    name: str = Field(max_length=64, schema_extra={"examples": ["team-web"]})
    scopes: list[str] = Field(
        description="read, write, admin and/or delegate.", schema_extra={"examples": [["read", "write"]]}
    )
    zones: list[str] = Field(
        default_factory=list,
        description="`example.test` (that zone), `*.example.test` (it and every zone below), `*` (all).",
        schema_extra={"examples": [["*.example.test"]]},
    )
    max_rrsets: int | None = Field(default=None, ge=0, le=2**31 - 1, description=_MAX_RRSETS)
    max_changes_per_day: int | None = Field(default=None, ge=0, le=2**31 - 1, description=_MAX_CHANGES)


class ClientUpdate(_Strict):
    """What an admin changes of a client; a field left out stays as it is, null returns it to the default."""

    max_rrsets: int | None = Field(default=None, ge=0, le=2**31 - 1, description=_MAX_RRSETS)
    max_changes_per_day: int | None = Field(default=None, ge=0, le=2**31 - 1, description=_MAX_CHANGES)


class ClientPublic(SQLModel):
    name: str
    key_id: str = Field(description="The public part of the key, to tell keys apart in logs.")
    scopes: list[str]
    zones: list[str]
    max_rrsets: int | None = Field(default=None, description="Its own RRset quota; null: the service's default.")
    max_changes_per_day: int | None = Field(
        default=None, description="Its own quota of changes a day; null: the service's default."
    )
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class QuotaUse(SQLModel):
    limit: int | None = Field(description="null: no limit.")
    used: int


class ClientQuota(SQLModel):
    rrsets: QuotaUse = Field(description="The RRsets the client created that exist.")
    changes_per_day: QuotaUse = Field(description="The changes its accepted writes held today (UTC).")
    resets_at: datetime = Field(description="When the count of changes starts again (00:00 UTC).")


class ClientDetail(ClientPublic):
    quota: ClientQuota


class ClientWithKey(ClientPublic):
    key: str = Field(description="The API key. It is shown once: store it now.")


class DeadLetterPublic(SQLModel):
    message_id: str
    request_id: str | None
    actor: str
    retries: int
    reason: str | None = Field(description="The request's error code and detail.")


class Redrive(_Strict):
    message_id: str | None = Field(default=None, max_length=64)
    all: bool = False


class Redriven(SQLModel):
    request_ids: list[str]


class ReconcileIn(_Strict):
    repair: bool | None = Field(
        default=None,
        description="Send the desired state again where an RRset is missing or different. "
        "Omitted: as the zone's `reconcile` policy says.",
    )


class ReconcileAccepted(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "report_id": 42,
                    "status": "queued",
                    "repair": False,
                    "status_url": "http://127.0.0.1:8000/api/v1/zones/example.test./reconciliation/42",
                }
            ]
        }
    )

    report_id: int
    status: ReconcileStatus
    repair: bool
    status_url: str


class DifferencePublic(SQLModel):
    name: str = Field(description="Owner name.")
    type: str
    kind: DifferenceKind = Field(
        description="`missing`: desired, not served. `different`: served with other values or TTL. "
        "`not_deleted`: deleted in the desired state, still served. `unmanaged`: served, not managed by "
        "Hostmaster (reported, never changed)."
    )
    desired: RRsetContent | None = Field(description="The desired state; null: absent.")
    served: RRsetContent | None = Field(description="What the primary served; null: nothing.")
    repaired: bool = Field(description="The desired state was sent again and proven served.")
    error: str | None = Field(default=None, description="Why a repair did not succeed.")


class ReconciliationPublic(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "zone": "example.test.",
                    "trigger": "on_demand",
                    "repair": False,
                    "requested_by": "ops",
                    "status": "drift",
                    "requested_at": "2026-11-26T12:00:00Z",
                    "started_at": "2026-11-26T12:00:00.020Z",
                    "finished_at": "2026-11-26T12:00:00.180Z",
                    "compared": 12,
                    "skipped": 0,
                    "drifted": 1,
                    "repaired": 0,
                    "unmanaged": 1,
                    "error": None,
                    "differences": [
                        {
                            "name": "ns1.example.test.",
                            "type": "A",
                            "kind": "unmanaged",
                            "desired": None,
                            "served": {"ttl": 300, "values": ["127.0.0.1"]},
                            "repaired": False,
                            "error": None,
                        },
                        {
                            "name": "www.example.test.",
                            "type": "A",
                            "kind": "different",
                            "desired": {"ttl": 300, "values": ["192.0.2.10"]},
                            "served": {"ttl": 300, "values": ["192.0.2.99"]},
                            "repaired": False,
                            "error": None,
                        },
                    ],
                }
            ]
        }
    )

    id: int
    zone: str
    trigger: ReconcileTrigger
    repair: bool = Field(description="Whether differences were to be repaired.")
    requested_by: str | None = Field(description="The API client or `cli` that asked; null when periodic.")
    status: ReconcileStatus
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    compared: int = Field(description="RRsets Hostmaster manages that were compared.")
    skipped: int = Field(description="RRsets with a request in flight, not compared.")
    drifted: int = Field(description="RRsets found missing, different or not deleted.")
    repaired: int = Field(description="Of those, repaired and proven served.")
    unmanaged: int = Field(description="RRsets served that Hostmaster does not manage.")
    error: str | None = Field(description="Why the zone could not be reconciled (status error).")
    differences: list[DifferencePublic] = Field(
        description="The RRsets that differ, a page at a time (`limit`, from `cursor`), in the order found."
    )
    differences_total: int = Field(default=0, description="How many differences the report holds in all.")
    next_cursor: str | None = Field(
        default=None, description="`cursor` of the next page of differences; null: no more."
    )


class KafkaOriginIn(_Strict):
    """Where the Kafka consumer read the event a write comes from."""

    topic: str = Field(min_length=1, max_length=249, schema_extra={"pattern": r"^[A-Za-z0-9._-]+$"})
    partition: int = Field(ge=0, le=2**31 - 1)
    offset: int = Field(ge=0, le=2**63 - 1)


class BatchWriteIn(_Strict):
    """One write of a batch: what its single call would carry, in its path, headers and body."""

    operation: Literal["record.create", "record.replace", "record.delete", "changeset"]
    zone: str | None = Field(default=None, max_length=255, description="changeset: the zone (its path).")
    name: str | None = Field(default=None, max_length=255, description="record.replace/delete: the owner name.")
    type: str | None = Field(default=None, max_length=10, description="record.replace/delete: the type.")
    body: dict[str, Any] | None = Field(
        default=None,
        description="The single call's body (none for record.delete): RecordCreate, RecordReplace, ChangeSetIn.",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="As `Idempotency-Key`.",
        schema_extra={"pattern": r"^[\x21-\x7e]+$"},  # IDEMPOTENCY_KEY's
    )
    request_id: uuid.UUID | None = Field(default=None, description="As `X-Request-ID`; a new one when absent.")
    kafka: KafkaOriginIn | None = Field(default=None, description="As `X-Kafka-Topic`/`-Partition`/`-Offset`.")


class BatchIn(_Strict):
    """Up to HOSTMASTER_MAX_BATCH_WRITES writes, each its own request, accepted in this order."""

    writes: list[BatchWriteIn] = Field(min_length=1)


class BatchAnswer(SQLModel):
    """The write's answer as its single call would give it: its status code and body."""

    status: int = Field(description="202, 200 (nothing to change), or the problem's status.")
    body: dict[str, Any] = Field(description="A RequestAccepted, or a Problem (with retry_after_s when it says so).")
    replayed: bool = Field(default=False, description="As `Idempotent-Replayed`: the key's earlier request.")


class BatchOut(SQLModel):
    results: list[BatchAnswer] = Field(description="One per write, in the order of `writes`.")
