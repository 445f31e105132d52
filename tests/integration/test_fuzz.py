"""Schemathesis against the live OpenAPI document, with a valid admin key: no 5xx, nothing
outside the schema. It runs on an API of its own (its own database and queue), so what the
fuzzer creates, changes or revokes touches no other test. `make test-fuzz` runs it longer."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.support import (
    ROOT,
    TEST_RUN_DIR,
    Bind,
    Process,
    hostmaster,
    make_client,
    pg_connect,
    pg_url,
    rabbitmq_connection,
    start_api,
)

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
SEED = os.environ.get("FUZZ_SEED", "20261126")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def fuzz_api(stack_env: dict[str, str], bind: Bind) -> Iterator[tuple[Process, str]]:
    database = f"hostmaster_fuzz_{os.getpid()}"
    queue = f"hostmaster_fuzz_{uuid.uuid4().hex[:8]}"
    admin = pg_connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{database}"')
    env = {
        **stack_env,
        "HOSTMASTER_DATABASE_URL": pg_url(database),
        "HOSTMASTER_QUEUE_NAME": queue,  # no worker takes these: nothing reaches DNS
    }
    migrated = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    zone = hostmaster(env, "zone", "add", "example.test", "--primary", f"{bind.host}:{bind.port}", "--key", "k")
    assert zone.returncode == 0, zone.stderr
    key = make_client(env, "fuzzer", "*", scopes=("admin",))
    process = start_api("api-fuzz", env)
    yield process, key
    process.stop()
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    admin.close()
    connection = rabbitmq_connection()
    channel = connection.channel()
    for suffix in ("", ".DQ", ".XQ"):
        channel.queue_delete(queue + suffix)
    connection.close()


def test_no_input_gets_a_5xx_or_an_answer_outside_the_schema(fuzz_api: tuple[Process, str]) -> None:
    process, key = fuzz_api
    report = TEST_RUN_DIR / "schemathesis"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{process.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            SEED,
            "--request-timeout",
            "15",
            # Rotating or revoking the fuzzer's own key would lock it out of the rest of the run.
            "--exclude-path-regex",
            r"^/api/v1/clients/.+",
            "--report",
            "junit",
            "--report-dir",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Tested: " in result.stdout
    assert process.popen.poll() is None, "the API died under fuzzing"
