"""The dead-letter queue: what died and why, re-driven with a full retry budget once fixed."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.dns_helpers import served, texts
from tests.support import DOWN_ZONE, Bind, unique_label, wait_for_terminal, wait_until

pytestmark = pytest.mark.integration


def test_a_dead_letter_is_listed_with_its_reason_and_redriven_once_the_server_is_back(
    stack: httpx.Client, bind: Bind
) -> None:
    name = f"{unique_label('dlq')}.{DOWN_ZONE}"
    answer = stack.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.90"]})
    request_id = answer.json()["request_id"]
    assert wait_for_terminal(stack, request_id, timeout=60)["error_code"] == "retries_exhausted"

    def listed() -> dict[str, object] | None:
        return next((dead for dead in stack.get("/api/v1/dlq").json() if dead["request_id"] == request_id), None)

    dead = wait_until(listed, timeout=15, what="the dead letter to be listed", interval=0.5)
    assert dead["reason"].startswith("retries_exhausted")
    assert dead["retries"] == 2

    zone = stack.get(f"/api/v1/zones/{DOWN_ZONE}").json()
    stack.patch(f"/api/v1/zones/{DOWN_ZONE}", json={"primary_port": bind.port})  # the server is back
    try:
        redriven = stack.post("/api/v1/dlq/redrive", json={"message_id": dead["message_id"]})
        assert redriven.status_code == 200, redriven.text
        assert redriven.json() == {"request_ids": [request_id]}

        final = wait_for_terminal(stack, request_id, timeout=60)
    finally:
        stack.patch(f"/api/v1/zones/{DOWN_ZONE}", json={"primary_port": zone["primary_port"]})

    assert final["status"] == "succeeded", final
    steps = [event["step"] for event in final["events"]]
    assert steps.index("dead_lettered") < steps.index("redriven") < len(steps) - 1
    assert steps[-1] == "succeeded"
    assert texts(served(bind, name, "A")) == ["192.0.2.90"]
    assert listed() is None


def test_redrive_and_purge_ask_for_what_they_do(stack: httpx.Client) -> None:
    assert stack.post("/api/v1/dlq/redrive", json={}).status_code == 422
    assert stack.post("/api/v1/dlq/redrive", json={"message_id": "x", "all": True}).status_code == 422
    assert stack.delete("/api/v1/dlq").status_code == 422
    assert stack.post("/api/v1/dlq/redrive", json={"message_id": "no-such-message"}).json() == {"request_ids": []}
