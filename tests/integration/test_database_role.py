"""The scripts' PostgreSQL set-up (scripts/lib.sh): a role of Hostmaster's own with a password kept in
the secrets directory, its databases owned by it, and the machine's pg_hba.conf left as it was found."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from tests.support import PG_HOST, PG_PORT, ROOT, pg_connect

pytestmark = pytest.mark.integration


def lib(*commands: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = "; ".join([f"source {ROOT / 'scripts' / 'lib.sh'}", "set -e", *commands])
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def role(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """A role name that does not exist yet, its password file, and the scripts' environment for it."""
    name = f"hm_role_{uuid.uuid4().hex[:8]}"
    secret = tmp_path / "secrets" / "hostmaster_database_password"
    env = {**os.environ, "PG_USER": name, "PG_SECRET": str(secret), "PG_HOST": PG_HOST, "PG_PORT": str(PG_PORT)}
    env.pop("PGPASSWORD", None)  # the role's password comes from its file, not the tests' own
    yield name, secret, env
    lib(
        f"pg_superuser -d postgres -qc 'DROP DATABASE IF EXISTS \"{name}_db\" WITH (FORCE)'",
        f"pg_superuser -d postgres -qc 'DROP DATABASE IF EXISTS \"{name}_old\" WITH (FORCE)'",
        f"pg_superuser -d postgres -qc 'DROP ROLE IF EXISTS \"{name}\"'",
        env=env,
    )


def _hba() -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in Path("/etc/postgresql").glob("*/main/pg_hba.conf")}


def test_the_scripts_make_a_role_of_their_own_with_a_password_and_leave_pg_hba_as_found(
    role: tuple[str, Path, dict[str, str]],
) -> None:
    name, secret, env = role
    before = _hba()

    first = lib("ensure_db_role", f"ensure_database {name}_db", env=env)
    again = lib("ensure_db_role", f"ensure_database {name}_db", env=env)  # a second run changes nothing

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert f"making the PostgreSQL role {name}" in first.stderr
    assert "making" not in again.stderr
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text()
    assert len(password) >= 24
    with pg_connect("postgres") as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolcanlogin, rolcreatedb, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = %s", (name,)
        )
        assert cursor.fetchone() == (True, True, False, False)  # logs in, makes its databases, nothing more
        cursor.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (f"{name}_db",))
        assert cursor.fetchone() == (name,)
    with (
        psycopg2.connect(
            host=PG_HOST, port=PG_PORT, user=name, password=password, dbname=f"{name}_db", connect_timeout=5
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("CREATE TABLE written (id int)")  # its own database: it may make tables there
    assert _hba() == before


def test_a_database_an_earlier_version_made_as_another_role_is_handed_to_hostmaster_s(
    role: tuple[str, Path, dict[str, str]],
) -> None:
    name, _, env = role
    made = lib(
        f"pg_superuser -d postgres -qc 'CREATE DATABASE \"{name}_old\"'",
        f"pg_superuser -d {name}_old -qc 'CREATE TABLE rrset (id serial PRIMARY KEY)'",
        env=env,
    )
    assert made.returncode == 0, made.stderr

    result = lib("ensure_db_role", f"ensure_database {name}_old", env=env)

    assert result.returncode == 0, result.stderr
    assert f"giving database {name}_old" in result.stderr
    with pg_connect(f"{name}_old") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
        assert cursor.fetchone() == (name,)
        cursor.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'rrset'")
        assert cursor.fetchone() == (name,)
        cursor.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'rrset_id_seq'")
        assert cursor.fetchone() == (name,)  # its sequence went with it
