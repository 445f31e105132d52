"""The migrations build the schema the models describe, on an empty database."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT, pg_connect

pytestmark = pytest.mark.integration


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env={**os.environ, "HOSTMASTER_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_alembic_check_finds_no_drift_between_models_and_migrations(database_url: str) -> None:
    result = alembic(database_url, "check")

    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    """On a scratch database of its own, so that the session's data stays."""
    scratch = database_url.rsplit("/", 1)[0] + "/hostmaster_migrations_test"
    admin = pg_connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS hostmaster_migrations_test WITH (FORCE)")
        cursor.execute("CREATE DATABASE hostmaster_migrations_test")
    try:
        for step in (("upgrade", "head"), ("downgrade", "base"), ("upgrade", "head"), ("check",)):
            result = alembic(scratch, *step)
            assert result.returncode == 0, f"alembic {' '.join(step)}: {result.stderr}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute("DROP DATABASE IF EXISTS hostmaster_migrations_test WITH (FORCE)")
        admin.close()
