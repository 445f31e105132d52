"""The message contract of the request topic (docs/kafka.md; JSON Schema in consumer/event.schema.json).

The value is a JSON object: ``schema_version`` (1), ``event_id`` (the idempotency key), the
``operation``, and the same ``body`` the REST API takes. Which call it becomes:

| operation        | call                                     | also needs     |
|------------------|------------------------------------------|----------------|
| `record.create`  | POST /api/v1/records                     |                |
| `record.replace` | PUT /api/v1/records/{name}/{type}        | `name`, `type` |
| `record.delete`  | DELETE /api/v1/records/{name}/{type}     | `name`, `type` |
| `changeset`      | POST /api/v2/zones/{zone}/changes        | `zone`         |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = 1


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Hostmaster request event")

    schema_version: Literal[1] = Field(description="The version of this contract.")
    event_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Unique per event: the idempotency key of the request it becomes.",
    )
    operation: Literal["record.create", "record.replace", "record.delete", "changeset"]
    name: str | None = Field(default=None, max_length=255, description="record.replace and record.delete")
    type: str | None = Field(default=None, max_length=10, description="record.replace and record.delete")
    zone: str | None = Field(default=None, max_length=255, description="changeset")
    body: dict[str, Any] | None = Field(default=None, description="The body the REST call takes.")

    @model_validator(mode="after")
    def _complete(self) -> Event:
        needs = {
            "record.create": ("body",),
            "record.replace": ("name", "type", "body"),
            "record.delete": ("name", "type"),
            "changeset": ("zone", "body"),
        }[self.operation]
        missing = [field for field in needs if getattr(self, field) is None]
        if missing:
            raise ValueError(f"{self.operation} needs {', '.join(missing)}")
        return self


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None


class BadEvent(ValueError):
    """The message is not an event of this contract; the reason is for the dead-letter headers."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode(value: bytes | None) -> Event:
    if value is None:
        raise BadEvent("invalid_json", "the message has no value")
    try:
        payload = json.loads(value, parse_constant=_not_a_number, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise BadEvent("invalid_json", f"the value is not JSON: {str(exc)[:200]}") from None
    try:
        return Event.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'value'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise BadEvent("schema_violation", problems[:1000]) from None


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is too large a number")
    return number


def call_for(event: Event) -> Call:
    return call_of(write_for(event))


def call_of(write: dict[str, Any]) -> Call:
    """The single REST call of one write of a batch (``write_for``)."""
    operation = write["operation"]
    if operation == "record.create":
        return Call("POST", "/api/v1/records", write.get("body"))
    if operation == "changeset":
        return Call("POST", f"/api/v2/zones/{quote(write.get('zone') or '', safe='')}/changes", write.get("body"))
    path = f"/api/v1/records/{quote(write.get('name') or '', safe='')}/{quote(write.get('type') or '', safe='')}"
    if operation == "record.replace":
        return Call("PUT", path, write.get("body"))
    return Call("DELETE", path, None)


def write_for(event: Event) -> dict[str, Any]:
    """The event as one write of ``POST /api/v2/requests:batch``: what ``call_for`` puts in a path and body."""
    write: dict[str, Any] = {"operation": event.operation}
    if event.operation == "changeset":
        write["zone"] = event.zone
    elif event.operation != "record.create":
        write.update(name=event.name, type=event.type)
    if event.operation != "record.delete":
        write["body"] = event.body
    return write


def json_schema() -> dict[str, Any]:
    schema = Event.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
