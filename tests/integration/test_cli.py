"""The `hostmaster requests` commands, as an operator runs them."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.support import ZONE, hostmaster, unique_label, wait_for_terminal

pytestmark = pytest.mark.integration


def test_requests_show_prints_the_outcome_the_changes_and_a_timeline_of_the_steps(
    stack: httpx.Client, stack_env: dict[str, str]
) -> None:
    name = f"{unique_label('cli')}.{ZONE}"
    request_id = stack.post("/api/v1/records", json={"name": name, "type": "A", "values": ["192.0.2.44"]}).json()[
        "request_id"
    ]
    wait_for_terminal(stack, request_id)

    result = hostmaster(stack_env, "requests", "show", request_id)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"request {request_id}  succeeded"
    assert f"{name}. A create → ['192.0.2.44']: succeeded" in result.stdout
    steps = [match.group(2) for line in lines if (match := re.match(r"\s+\+\s*(\d+\.\d{3}) s  (\w+)", line))]
    assert steps[0] == "received"
    assert steps[-1] == "succeeded"
    assert {"queued", "started", "dns_sent", "dns_verified"} <= set(steps)
    offsets = [float(m.group(1)) for line in lines if (m := re.match(r"\s+\+\s*(\d+\.\d{3}) s", line))]
    assert offsets == sorted(offsets)


def test_requests_show_of_an_unknown_id_says_so(stack_env: dict[str, str]) -> None:
    result = hostmaster(stack_env, "requests", "show", "7c9e6679-7425-40de-944b-e07fc1f90ae7")

    assert result.returncode == 1
    assert "no request has the id 7c9e6679-7425-40de-944b-e07fc1f90ae7" in result.stderr


def test_requests_list_filters_by_status_newest_first(stack: httpx.Client, stack_env: dict[str, str]) -> None:
    refused = stack.post("/api/v1/records", json={"name": f"bad name.{ZONE}", "type": "A", "values": ["192.0.2.1"]})
    assert refused.status_code == 422

    result = hostmaster(stack_env, "requests", "list", "--status", "rejected", "--limit", "5")

    assert result.returncode == 0, result.stderr
    listed = [json.loads(line) for line in result.stdout.splitlines()]
    assert listed[0]["request_id"] == refused.json()["request_id"]
    assert {item["status"] for item in listed} == {"rejected"}


def test_run_consumer_without_a_key_says_so_and_is_not_started_again(stack_env: dict[str, str]) -> None:
    env = {key: value for key, value in stack_env.items() if key != "HOSTMASTER_CONSUMER_API_KEY"}
    result = hostmaster(env, "run", "consumer")

    assert result.returncode == 2
    assert "no API key: set HOSTMASTER_CONSUMER_API_KEY" in result.stderr
    assert "not starting it again" in result.stderr
