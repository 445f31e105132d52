"""Settings: the env file of APP_ENV, the environment over it, secrets from files, refusals in prod."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from db.models import ApiClient
from service.core.settings import ENVS_DIR, PROJECT_ROOT, Settings, SettingsError, load_settings
from service.registry import quotas
from service.registry.clients import principal_of
from service.registry.quotas import Quota

DB_PASSWORD = "Db-p@ss:w/rd%?#&x y"  # every character that needs quoting in a URL
MQ_PASSWORD = "Mq-s3cret/with:colon"
PEPPER = "pepper-8f2c1e7a9b4d6053"


def env_file_value(app_env: str, key: str) -> str:
    """The value ``envs/.env.<app_env>`` gives ``key``; the tests compare against it."""
    for line in (ENVS_DIR / f".env.{app_env}").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    raise AssertionError(f"envs/.env.{app_env} does not set {key}")


@pytest.fixture
def secrets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean environment: no HOSTMASTER_* or APP_ENV from the caller, an empty secrets directory."""
    for name in list(os.environ):
        if name.startswith("HOSTMASTER_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("APP_ENV", raising=False)
    directory = tmp_path / "secrets"
    directory.mkdir()
    monkeypatch.setenv("HOSTMASTER_SECRETS_DIR", str(directory))
    (directory / "hostmaster_api_pepper").write_text(PEPPER)  # as a mounted secret file
    return directory


def test_prod_refuses_to_start_without_an_api_pepper(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (secrets_dir / "hostmaster_api_pepper").unlink()
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("HOSTMASTER_DATABASE_PASSWORD", DB_PASSWORD)
    monkeypatch.setenv("HOSTMASTER_RABBITMQ_PASSWORD", MQ_PASSWORD)

    with pytest.raises(SettingsError, match="HOSTMASTER_API_PEPPER") as info:
        load_settings()
    assert DB_PASSWORD not in str(info.value)


def test_the_api_pepper_comes_from_a_mounted_file(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "dev")

    settings = load_settings()

    assert settings.pepper == PEPPER.encode()
    assert PEPPER not in repr(settings)


def test_dev_loads_the_dev_env_file_without_any_password(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "dev")
    settings = load_settings()
    assert settings.app_env == "dev"
    assert settings.database_password is None
    assert settings.database_url == env_file_value("dev", "HOSTMASTER_DATABASE_URL")
    assert settings.database_dsn == settings.database_url
    assert settings.queue_name == env_file_value("dev", "HOSTMASTER_QUEUE_NAME")
    assert settings.max_backoff_ms == int(env_file_value("dev", "HOSTMASTER_MAX_BACKOFF_MS"))
    assert settings.secrets_dir == secrets_dir


def test_without_app_env_the_dev_settings_load(secrets_dir: Path) -> None:
    settings = load_settings()
    assert settings.app_env == "dev"
    assert settings.max_retries == int(env_file_value("dev", "HOSTMASTER_MAX_RETRIES"))


def test_the_environment_overrides_the_env_file(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_file_value("dev", "HOSTMASTER_MAX_BACKOFF_MS") != "1234"
    assert env_file_value("dev", "HOSTMASTER_QUEUE_NAME") != "other-queue"
    monkeypatch.setenv("APP_ENV", "dev")
    monkeypatch.setenv("HOSTMASTER_MAX_BACKOFF_MS", "1234")
    monkeypatch.setenv("HOSTMASTER_QUEUE_NAME", "other-queue")
    monkeypatch.setenv("HOSTMASTER_DATABASE_URL", "postgresql+psycopg2://app@db.internal:6543/other")
    settings = load_settings()
    assert settings.max_backoff_ms == 1234
    assert settings.queue_name == "other-queue"
    assert settings.database_url == "postgresql+psycopg2://app@db.internal:6543/other"


def test_a_relative_secrets_dir_in_the_env_file_is_taken_from_the_project_root(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOSTMASTER_SECRETS_DIR")
    monkeypatch.setenv("APP_ENV", "dev")
    configured = Path(env_file_value("dev", "HOSTMASTER_SECRETS_DIR"))
    expected = configured if configured.is_absolute() else PROJECT_ROOT / configured
    assert load_settings().secrets_dir == expected


@pytest.mark.parametrize("app_env", ["prod", "uta"])
def test_prod_and_uta_refuse_to_start_without_passwords_naming_both(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch, app_env: str
) -> None:
    monkeypatch.setenv("APP_ENV", app_env)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert f"APP_ENV={app_env} refuses to start with a missing or placeholder secret" in message
    assert "HOSTMASTER_DATABASE_PASSWORD" in message
    assert "HOSTMASTER_RABBITMQ_PASSWORD" in message
    assert "HOSTMASTER_SECRETS_DIR" in message


@pytest.mark.parametrize("placeholder", ["changethis", "guest", "GUEST", " changeme ", "password", "secret", ""])
def test_prod_refuses_a_placeholder_database_password(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch, placeholder: str
) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("HOSTMASTER_DATABASE_PASSWORD", placeholder)
    monkeypatch.setenv("HOSTMASTER_RABBITMQ_PASSWORD", MQ_PASSWORD)
    with pytest.raises(SettingsError, match="HOSTMASTER_DATABASE_PASSWORD") as info:
        load_settings()
    assert "HOSTMASTER_RABBITMQ_PASSWORD" not in str(info.value)


@pytest.mark.parametrize("placeholder", ["guest", "changethis"])
def test_prod_refuses_a_placeholder_rabbitmq_password(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch, placeholder: str
) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("HOSTMASTER_DATABASE_PASSWORD", DB_PASSWORD)
    monkeypatch.setenv("HOSTMASTER_RABBITMQ_PASSWORD", placeholder)
    with pytest.raises(SettingsError, match="HOSTMASTER_RABBITMQ_PASSWORD") as info:
        load_settings()
    assert "HOSTMASTER_DATABASE_PASSWORD" not in str(info.value)
    assert DB_PASSWORD not in str(info.value)


def test_prod_with_real_passwords_puts_them_url_quoted_in_the_dsn_only(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("HOSTMASTER_DATABASE_URL", "postgresql+psycopg2://hostmaster@postgres:5432/hostmaster")
    monkeypatch.setenv("HOSTMASTER_RABBITMQ_URL", "amqp://hostmaster@rabbitmq:5672/hostmaster")
    monkeypatch.setenv("HOSTMASTER_DATABASE_PASSWORD", DB_PASSWORD)
    monkeypatch.setenv("HOSTMASTER_RABBITMQ_PASSWORD", MQ_PASSWORD)
    settings = load_settings()

    assert settings.database_dsn == (
        "postgresql+psycopg2://hostmaster:Db-p%40ss%3Aw%2Frd%25%3F%23%26x%20y@postgres:5432/hostmaster"
    )
    parts = urlsplit(settings.database_dsn)
    assert (parts.username, unquote(parts.password or ""), parts.hostname, parts.port, parts.path) == (
        "hostmaster",
        DB_PASSWORD,
        "postgres",
        5432,
        "/hostmaster",
    )
    assert settings.rabbitmq_dsn == "amqp://hostmaster:Mq-s3cret%2Fwith%3Acolon@rabbitmq:5672/hostmaster"

    shown = f"{settings!r} {settings!s} {settings.model_dump_json()}"
    for secret in (DB_PASSWORD, MQ_PASSWORD, "Db-p%40ss", "Mq-s3cret"):
        assert secret not in shown
    assert settings.database_url == "postgresql+psycopg2://hostmaster@postgres:5432/hostmaster"


def test_the_dsn_keeps_an_ipv6_host_in_brackets(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "dev")
    monkeypatch.setenv("HOSTMASTER_DATABASE_URL", "postgresql+psycopg2://postgres@[::1]:5432/hostmaster")
    monkeypatch.setenv("HOSTMASTER_DATABASE_PASSWORD", "pw")
    assert load_settings().database_dsn == "postgresql+psycopg2://postgres:pw@[::1]:5432/hostmaster"


def test_prod_reads_passwords_from_files_in_the_secrets_dir(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (secrets_dir / "hostmaster_database_password").write_text(DB_PASSWORD + "\n")
    (secrets_dir / "hostmaster_rabbitmq_password").write_text(MQ_PASSWORD + "\n")
    monkeypatch.setenv("APP_ENV", "prod")
    settings = load_settings()
    assert settings.secrets_dir == secrets_dir
    assert settings.database_password is not None
    assert settings.database_password.get_secret_value() == DB_PASSWORD
    assert settings.rabbitmq_password is not None
    assert settings.rabbitmq_password.get_secret_value() == MQ_PASSWORD


def test_a_password_in_the_environment_beats_the_secret_file(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (secrets_dir / "hostmaster_database_password").write_text("from-the-file")
    (secrets_dir / "hostmaster_rabbitmq_password").write_text(MQ_PASSWORD)
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("HOSTMASTER_DATABASE_PASSWORD", "from-the-environment")
    settings = load_settings()
    assert settings.database_password is not None
    assert settings.database_password.get_secret_value() == "from-the-environment"


def test_a_placeholder_in_a_secret_file_is_refused_too(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (secrets_dir / "hostmaster_database_password").write_text("changethis\n")
    (secrets_dir / "hostmaster_rabbitmq_password").write_text(MQ_PASSWORD)
    monkeypatch.setenv("APP_ENV", "prod")
    with pytest.raises(SettingsError, match="HOSTMASTER_DATABASE_PASSWORD"):
        load_settings()


@pytest.mark.parametrize("app_env", ["staging", "PROD", "production", "", "dev "])
def test_an_unknown_app_env_is_refused(secrets_dir: Path, monkeypatch: pytest.MonkeyPatch, app_env: str) -> None:
    monkeypatch.setenv("APP_ENV", app_env)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value) == f"APP_ENV must be dev, uta or prod, not {app_env!r}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOSTMASTER_MAX_RETRIES", "-1"),
        ("HOSTMASTER_DNS_TIMEOUT_S", "0"),
        ("HOSTMASTER_API_PORT", "eighty"),
        ("HOSTMASTER_QUEUE_NAME", "no spaces allowed"),
    ],
)
def test_an_invalid_value_is_a_settings_error_naming_the_field(
    secrets_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("APP_ENV", "dev")
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="invalid configuration") as info:
        load_settings()
    assert name.removeprefix("HOSTMASTER_").lower() in str(info.value)


def test_python_m_service_in_prod_without_passwords_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HOSTMASTER_")}
    env["APP_ENV"] = "prod"
    # An empty secrets directory, so that a /run/secrets on this machine cannot supply the passwords.
    env["HOSTMASTER_SECRETS_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "service"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hostmaster: APP_ENV=prod refuses to start")
    assert "HOSTMASTER_DATABASE_PASSWORD" in lines[0]
    assert "HOSTMASTER_RABBITMQ_PASSWORD" in lines[0]
    assert result.stdout == ""


def test_installed_non_editable_the_settings_read_envs_from_the_working_directory(tmp_path: Path) -> None:
    # As in the image: `uv sync --no-editable` puts the packages in site-packages, with no envs/
    # beside them; envs/ is in the working directory (/app).
    site = tmp_path / "site-packages"
    for package in ("service", "db"):
        shutil.copytree(PROJECT_ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    app = tmp_path / "app"
    (app / "envs").mkdir(parents=True)
    text = (ENVS_DIR / ".env.dev").read_text()
    (app / "envs" / ".env.dev").write_text(text + "\nHOSTMASTER_QUEUE_NAME=read-from-app-envs\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("HOSTMASTER_")}
    env.update(APP_ENV="dev", PYTHONPATH=str(site))
    result = subprocess.run(
        [sys.executable, "-c", "from service.core.settings import load_settings; print(load_settings().queue_name)"],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "read-from-app-envs"


def test_a_default_quota_of_none_is_no_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTMASTER_QUOTA_RRSETS", "none")
    monkeypatch.setenv("HOSTMASTER_QUOTA_CHANGES_PER_DAY", "500")
    settings = Settings()

    assert quotas.defaults(settings) == Quota(rrsets=None, changes_per_day=500)
    assert quotas.defaults(settings).limited


def test_a_client_s_own_quota_wins_over_the_default_and_an_admin_has_none() -> None:
    defaults = Quota(rrsets=100, changes_per_day=1000)
    team = ApiClient(name="team", key_id="k", key_hash="h", scopes=["write"], zones=["*"], max_rrsets=5)
    admin = ApiClient(name="root", key_id="r", key_hash="h", scopes=["admin"], zones=["*"], max_rrsets=5)

    assert principal_of(team, defaults).quota == Quota(rrsets=5, changes_per_day=1000)
    assert principal_of(admin, defaults).quota == Quota()
    assert not principal_of(admin, defaults).quota.limited
