"""JSON log lines with the request id on each, and where TSIG secrets come from."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.core.context import bound_request_id, current_request_id
from service.core.errors import HostmasterError
from service.core.logs import configure_logging
from service.core.secrets import SecretUnavailable, tsig_env_name, tsig_secret
from service.core.settings import Settings

NOISY_LOGGERS = ("pika", "kafka", "httpx", "uvicorn.access")
SECRET = "c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1zaG93bg=="

# Logging ------------------------------------------------------------------------------


@contextmanager
def json_logging(component: str, level: str = "INFO") -> Iterator[io.StringIO]:
    """configure_logging into a StringIO, then put the root logger back exactly as it was.

    configure_logging removes every root handler, pytest's capture handlers included, and
    quietens a few library loggers; all of it is restored so that other tests are unaffected.
    """
    root = logging.getLogger()
    handlers = list(root.handlers)
    root_level = root.level
    noisy_levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    stream = io.StringIO()
    try:
        configure_logging(component, level, stream)
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(root_level)
        for name, noisy_level in noisy_levels.items():
            logging.getLogger(name).setLevel(noisy_level)


@pytest.fixture
def api_logs() -> Iterator[io.StringIO]:
    """The API's JSON log stream; the root logger is restored when the test ends."""
    with json_logging("api") as stream:
        yield stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    parsed = []
    for raw in stream.getvalue().splitlines():
        line = json.loads(raw)  # every line must be one JSON object
        assert isinstance(line, dict)
        parsed.append(line)
    return parsed


def test_each_log_record_is_one_json_line_with_the_documented_fields(api_logs: io.StringIO) -> None:
    before = datetime.now(UTC)
    logging.getLogger("service.registry.records").info("record %s saved", "www.example.test.")
    [line] = lines(api_logs)
    assert set(line) == {"timestamp", "level", "component", "logger", "message", "request_id", "client"}
    assert line["level"] == "INFO"
    assert line["component"] == "api"
    assert line["logger"] == "service.registry.records"
    assert line["message"] == "record www.example.test. saved"
    assert line["request_id"] is None
    timestamp = datetime.fromisoformat(line["timestamp"])
    assert timestamp.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= timestamp <= datetime.now(UTC) + timedelta(seconds=1)


def test_the_request_id_comes_from_the_bound_context(api_logs: io.StringIO) -> None:
    log = logging.getLogger("service.api")
    with bound_request_id("6f1c3b4e-8a52-4c0e-9d43-0b2f7f1f2a10"):
        log.info("inside")
        with bound_request_id("11111111-2222-3333-4444-555555555555"):
            log.info("nested")
        log.info("back")
    log.info("outside")
    assert [(line["message"], line["request_id"]) for line in lines(api_logs)] == [
        ("inside", "6f1c3b4e-8a52-4c0e-9d43-0b2f7f1f2a10"),
        ("nested", "11111111-2222-3333-4444-555555555555"),
        ("back", "6f1c3b4e-8a52-4c0e-9d43-0b2f7f1f2a10"),
        ("outside", None),
    ]
    assert current_request_id() is None


def test_an_explicit_request_id_in_extra_is_kept(api_logs: io.StringIO) -> None:
    with bound_request_id("from-context"):
        logging.getLogger("workers.apply").info("explicit", extra={"request_id": "from-extra"})
    assert lines(api_logs)[0]["request_id"] == "from-extra"


def test_extra_fields_appear_in_the_line(api_logs: io.StringIO) -> None:
    logging.getLogger("workers.apply").warning(
        "retrying", extra={"zone": "example.test.", "attempt": 2, "rcode": None, "values": ["192.0.2.1"]}
    )
    [line] = lines(api_logs)
    assert line["level"] == "WARNING"
    assert line["zone"] == "example.test."
    assert line["attempt"] == 2
    assert line["rcode"] is None
    assert line["values"] == ["192.0.2.1"]


def test_non_ascii_text_is_written_as_it_is(api_logs: io.StringIO) -> None:
    logging.getLogger("service").info("zone bücher.example rejected")
    assert "bücher" in api_logs.getvalue()
    assert lines(api_logs)[0]["message"] == "zone bücher.example rejected"


def test_records_below_the_level_are_not_written(api_logs: io.StringIO) -> None:
    log = logging.getLogger("service.x")
    log.debug("hidden")
    log.info("shown")
    assert [line["message"] for line in lines(api_logs)] == ["shown"]


def test_an_exception_is_logged_inside_its_single_json_line(api_logs: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("service").exception("failed")
    [line] = lines(api_logs)
    assert line["level"] == "ERROR"
    assert "RuntimeError: boom" in line["exc_info"]


def test_the_component_is_the_one_given_to_configure_logging() -> None:
    with json_logging("worker") as stream:
        logging.getLogger("workers").error("x")
    assert lines(stream)[0]["component"] == "worker"


def test_configure_logging_replaces_earlier_handlers_so_nothing_is_logged_twice() -> None:
    with json_logging("api") as first, json_logging("consumer") as second:
        logging.getLogger("service").warning("once")
    assert first.getvalue() == ""
    assert [line["component"] for line in lines(second)] == ["consumer"]


def test_noisy_libraries_log_warnings_only(api_logs: io.StringIO) -> None:
    logging.getLogger("pika.connection").info("connected")
    logging.getLogger("pika.connection").warning("blocked")
    assert [line["message"] for line in lines(api_logs)] == ["blocked"]


def test_the_root_logger_is_restored_after_json_logging() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with json_logging("api", "DEBUG"):
        assert root.level == logging.DEBUG
        assert root.handlers != handlers
    assert root.handlers == handlers
    assert root.level == level


# TSIG secrets -------------------------------------------------------------------------


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Dev settings whose secrets directory is an empty temporary one, and no TSIG secret in the environment."""
    for name in list(os.environ):
        if name.startswith("HOSTMASTER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("APP_ENV", "dev")
    (tmp_path / "tsig").mkdir()
    return Settings(secrets_dir=tmp_path)


def secrets_dir(settings: Settings) -> Path:
    assert settings.secrets_dir is not None
    return settings.secrets_dir


@pytest.mark.parametrize(
    ("key_name", "env_name"),
    [
        ("hostmaster-key.", "HOSTMASTER_TSIG_SECRET_HOSTMASTER_KEY"),
        ("hostmaster-key", "HOSTMASTER_TSIG_SECRET_HOSTMASTER_KEY"),
        ("Zone.Example-Key.", "HOSTMASTER_TSIG_SECRET_ZONE_EXAMPLE_KEY"),
        ("key--with..runs.", "HOSTMASTER_TSIG_SECRET_KEY_WITH_RUNS"),
        ("_acme.key2.", "HOSTMASTER_TSIG_SECRET_ACME_KEY2"),
    ],
)
def test_the_tsig_environment_variable_is_derived_from_the_key_name(key_name: str, env_name: str) -> None:
    assert tsig_env_name(key_name) == env_name


def test_the_tsig_secret_is_read_from_the_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTMASTER_TSIG_SECRET_HOSTMASTER_KEY", f"  {SECRET}\n")
    assert tsig_secret(settings, "hostmaster-key.").get_secret_value() == SECRET


def test_the_tsig_secret_is_read_from_the_file_named_after_the_key(settings: Settings) -> None:
    (secrets_dir(settings) / "tsig" / "hostmaster-key").write_text(SECRET + "\n")
    assert tsig_secret(settings, "hostmaster-key.").get_secret_value() == SECRET
    assert tsig_secret(settings, "hostmaster-key").get_secret_value() == SECRET


def test_the_environment_beats_the_file(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    (secrets_dir(settings) / "tsig" / "hostmaster-key").write_text("ZnJvbS10aGUtZmlsZQ==")
    monkeypatch.setenv("HOSTMASTER_TSIG_SECRET_HOSTMASTER_KEY", SECRET)
    assert tsig_secret(settings, "hostmaster-key.").get_secret_value() == SECRET


def test_an_empty_environment_variable_falls_back_to_the_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    (secrets_dir(settings) / "tsig" / "hostmaster-key").write_text(SECRET)
    monkeypatch.setenv("HOSTMASTER_TSIG_SECRET_HOSTMASTER_KEY", "")
    assert tsig_secret(settings, "hostmaster-key.").get_secret_value() == SECRET


def test_the_secret_is_a_secret_str_that_does_not_show_its_value(settings: Settings) -> None:
    (secrets_dir(settings) / "tsig" / "hostmaster-key").write_text(SECRET)
    secret = tsig_secret(settings, "hostmaster-key.")
    assert SECRET not in f"{secret!r} {secret!s}"


def test_a_missing_secret_names_both_places_to_put_it(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another key's secret is available in both places; it must not leak into the message.
    (secrets_dir(settings) / "tsig" / "other-key").write_text(SECRET)
    monkeypatch.setenv("HOSTMASTER_TSIG_SECRET_OTHER_KEY", SECRET)
    with pytest.raises(SecretUnavailable) as info:
        tsig_secret(settings, "hostmaster-key.")
    error = info.value
    assert isinstance(error, HostmasterError)
    assert error.code == "secret_unavailable"
    assert "no secret for TSIG key hostmaster-key." in error.detail
    assert "HOSTMASTER_TSIG_SECRET_HOSTMASTER_KEY" in error.detail
    assert "tsig/hostmaster-key" in error.detail
    assert "HOSTMASTER_SECRETS_DIR" in error.detail
    assert SECRET not in str(error)


def test_without_a_secrets_dir_only_the_environment_is_looked_at(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HOSTMASTER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("APP_ENV", "dev")
    settings = Settings()
    assert settings.secrets_dir is None
    with pytest.raises(SecretUnavailable, match="HOSTMASTER_TSIG_SECRET_HOSTMASTER_KEY"):
        tsig_secret(settings, "hostmaster-key.")
    monkeypatch.setenv("HOSTMASTER_TSIG_SECRET_HOSTMASTER_KEY", SECRET)
    assert tsig_secret(settings, "hostmaster-key.").get_secret_value() == SECRET


@pytest.mark.parametrize("key_name", ["../outside", "tsig/../../outside", "/etc/passwd"])
def test_a_key_name_with_a_slash_never_reads_a_file_outside_the_tsig_directory(
    settings: Settings, key_name: str
) -> None:
    (secrets_dir(settings) / "outside").write_text(SECRET)
    with pytest.raises(SecretUnavailable) as info:
        tsig_secret(settings, key_name)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_a_blank_secret_counts_as_missing(settings: Settings, monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    monkeypatch.setenv(tsig_env_name("blank-key."), blank)
    assert settings.secrets_dir is not None
    (settings.secrets_dir / "tsig").mkdir(parents=True, exist_ok=True)
    (settings.secrets_dir / "tsig" / "blank-key").write_text(blank)

    with pytest.raises(SecretUnavailable):
        tsig_secret(settings, "blank-key.")
