"""What the API takes and returns, as SQLModel (pydantic) models beside the tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from db.models import ZoneBase


class RecordCreate(SQLModel):
    """A request for one RRset: every value of one owner name and type."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: str = Field(
        description="Owner name, absolute (the trailing dot is optional).",
        schema_extra={"examples": ["www.example.test"]},
    )
    type: str = Field(description="Record type: A, AAAA, CNAME or TXT.", schema_extra={"examples": ["A"]})
    values: list[str] = Field(
        description="Values in presentation format. A TXT value that does not start with a double "
        "quote is taken as literal text and split into 255-octet strings.",
        schema_extra={"examples": [["192.0.2.10"]]},
    )
    ttl: int | None = Field(
        default=None, description="Seconds; the zone's default when omitted.", schema_extra={"examples": [300]}
    )


class RecordPublic(SQLModel):
    zone: str
    name: str
    type: str
    ttl: int
    values: list[str]
    version: int
    status: str
    last_request_id: uuid.UUID | None
    updated_at: datetime


class RecordList(SQLModel):
    items: list[RecordPublic]


class RequestAccepted(SQLModel):
    request_id: uuid.UUID
    status: str
    status_url: str


class RequestEventPublic(SQLModel):
    at: datetime
    step: str
    component: str
    detail: dict[str, Any]


class RequestPublic(SQLModel):
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
    events: list[RequestEventPublic]


class ZoneCreate(ZoneBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]


class ZonePublic(ZoneBase):
    id: int
    created_at: datetime
