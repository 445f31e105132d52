"""docker/entrypoint.sh, run here as the containers run it: it waits for the role's dependencies,
then execs the process, which answers; a dependency that never comes is a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg2
import pytest

from tests.support import ROOT, TEST_RUN_DIR, Process, free_port, pg_connect, pg_url, wait_until

pytestmark = pytest.mark.integration

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def entrypoint_env(stack_env: dict[str, str], **extra: str) -> dict[str, str]:
    """The stack's settings, and PATH with the project's virtualenv first, as in the image."""
    bin_dir = str(Path(sys.executable).parent)
    return {**stack_env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "APP_DIR": str(ROOT), **extra}


@pytest.fixture
def api_by_entrypoint(stack_env: dict[str, str]) -> Iterator[Process]:
    port = free_port()
    env = entrypoint_env(stack_env, HOSTMASTER_API_PORT=str(port))
    TEST_RUN_DIR.mkdir(parents=True, exist_ok=True)
    log_path = TEST_RUN_DIR / "api-entrypoint.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            ["bash", str(ENTRYPOINT), "api"],
            cwd="/",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = Process("api-entrypoint", log_path, popen, f"http://127.0.0.1:{port}")
    yield process
    process.stop()


def test_the_api_role_waits_for_its_dependencies_then_serves(api_by_entrypoint: Process) -> None:
    def ready() -> bool:
        try:
            return httpx.get(f"{api_by_entrypoint.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=60, what="the API started by the entrypoint")
    text = api_by_entrypoint.log_path.read_text()
    assert "database at 127.0.0.1:" in text
    assert "rabbitmq at 127.0.0.1:" in text


def test_the_migrate_role_upgrades_a_fresh_database(stack_env: dict[str, str]) -> None:
    name = f"hostmaster_entrypoint_{os.getpid()}"
    admin = pg_connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = pg_url(name)
    try:
        result = subprocess.run(
            ["bash", str(ENTRYPOINT), "migrate"],
            cwd="/",
            env=entrypoint_env(stack_env, HOSTMASTER_DATABASE_URL=url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        with psycopg2.connect(url.replace("+psycopg2", ""), connect_timeout=5) as db, db.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM alembic_version")
            assert cursor.fetchone() == (1,)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_dependency_that_never_answers_is_a_clear_error_not_a_hang(stack_env: dict[str, str]) -> None:
    closed = free_port()
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), "worker"],
        cwd="/",
        env=entrypoint_env(
            stack_env,
            HOSTMASTER_DATABASE_URL=f"postgresql+psycopg2://postgres@127.0.0.1:{closed}/nothing",
            HOSTMASTER_WAIT_TIMEOUT_S="2",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert f"database at 127.0.0.1:{closed} did not answer within 2 s" in result.stderr
