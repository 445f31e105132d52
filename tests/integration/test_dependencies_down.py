"""With its database and broker unreachable, the API says so with 503s, never a 500 or a hang."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import free_port, start_api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def orphan_api(stack_env: dict[str, str]) -> Iterator[str]:
    env = {
        **stack_env,
        "HOSTMASTER_DATABASE_URL": f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing",
        "HOSTMASTER_RABBITMQ_URL": f"amqp://guest@127.0.0.1:{free_port()}/%2F",
    }
    process = start_api("api-orphan", env)
    yield process.url
    process.stop()


def test_readiness_reports_each_dependency_down(orphan_api: str) -> None:
    answer = httpx.get(f"{orphan_api}/readyz", timeout=15)

    assert answer.status_code == 503
    assert answer.headers["retry-after"]
    body = answer.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("error")
    assert body["checks"]["broker"].startswith("error")


def test_a_write_with_the_database_down_is_a_503_with_retry_after(orphan_api: str) -> None:
    answer = httpx.post(
        f"{orphan_api}/api/v1/records",
        json={"name": "www.example.test", "type": "A", "values": ["192.0.2.1"]},
        headers={"Authorization": "Bearer hm_0123456789ab_" + "k" * 43},  # well-formed: checking it needs the database
        timeout=15,
    )

    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"]
    assert answer.json()["code"] == "database_unavailable"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/records"),
        ("GET", "/api/v1/records/www.example.test/A"),
        ("GET", "/api/v1/requests/7c9e6679-7425-40de-944b-e07fc1f90ae7"),
        ("GET", "/api/v1/zones"),
        ("GET", "/api/v1/clients"),
        ("DELETE", "/api/v1/records/www.example.test/A"),
        ("POST", "/api/v2/zones/example.test/changes"),
    ],
)
def test_every_route_with_the_database_down_is_a_503_not_a_500_or_a_hang(
    orphan_api: str, method: str, path: str
) -> None:
    answer = httpx.request(
        method,
        f"{orphan_api}{path}",
        json={"changes": []} if method == "POST" else None,
        headers={"Authorization": "Bearer hm_0123456789ab_" + "k" * 43},
        timeout=15,
    )

    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"]
    assert answer.json()["code"] == "database_unavailable"
