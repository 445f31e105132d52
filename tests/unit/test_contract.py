"""The Kafka message contract: what decodes, what does not and why, and the published schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumer.contract import BadEvent, call_for, decode, json_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "consumer" / "event.schema.json"


def test_the_committed_json_schema_is_the_contract_in_the_code() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), "regenerate consumer/event.schema.json"


@pytest.mark.parametrize(
    ("event", "call"),
    [
        ({"operation": "record.create", "body": {"name": "a.example.test"}}, ("POST", "/api/v1/records")),
        (
            {"operation": "record.replace", "name": "a.example.test", "type": "A", "body": {"values": []}},
            ("PUT", "/api/v1/records/a.example.test/A"),
        ),
        ({"operation": "record.delete", "name": "a/b", "type": "A"}, ("DELETE", "/api/v1/records/a%2Fb/A")),
        (
            {"operation": "changeset", "zone": "example.test", "body": {"changes": []}},
            ("POST", "/api/v2/zones/example.test/changes"),
        ),
    ],
)
def test_each_operation_becomes_its_rest_call(event: dict[str, object], call: tuple[str, str]) -> None:
    decoded = decode(json.dumps({"schema_version": 1, "event_id": "e-1", **event}).encode())

    made = call_for(decoded)

    assert (made.method, made.path) == call


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "invalid_json"),
        (b"{nope", "invalid_json"),
        (b"[1]", "schema_violation"),
        (b'{"schema_version": 1, "event_id": "e", "operation": "record.create", "body": {"ttl": NaN}}', "invalid_json"),
        (
            b'{"schema_version": 1, "event_id": "e", "operation": "record.create", "body": {"ttl": 1e999}}',
            "invalid_json",
        ),
        (b'{"schema_version": 2, "event_id": "e", "operation": "record.create", "body": {}}', "schema_violation"),
        (
            b'{"schema_version": 1, "event_id": "has space", "operation": "record.create", "body": {}}',
            "schema_violation",
        ),
        (b'{"schema_version": 1, "event_id": "e", "operation": "record.replace", "body": {}}', "schema_violation"),
        (b'{"schema_version": 1, "event_id": "e", "operation": "changeset", "body": {}}', "schema_violation"),
        (
            b'{"schema_version": 1, "event_id": "e", "operation": "record.create", "body": {}, "extra": 1}',
            "schema_violation",
        ),
    ],
)
def test_what_is_not_an_event_says_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(BadEvent) as refused:
        decode(value)

    assert refused.value.reason == reason
    assert refused.value.detail
