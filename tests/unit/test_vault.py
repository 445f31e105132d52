"""The Vault back-end of the secrets provider, through hvac, against a KV v2 answerer on loopback.

No Vault server can be installed on these machines; this stand-in speaks the one call the
back-end makes (GET /v1/<mount>/data/<path>) with Vault's answers, so hvac's real HTTP,
error mapping and our handling of them are what is tested.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from service.core.secrets import SecretUnavailable, tsig_secret
from service.core.settings import SettingsError, load_settings

TOKEN = "hvs.test-token-0123456789"
STORE = {
    "secret/data/hostmaster/tsig/hostmaster-key": "c2VjcmV0LWZyb20tdmF1bHQtMDEyMzQ1Njc4OWFiY2Q=",
    "secret/data/hostmaster/database_password": "db-from-vault-5b7e",
    "secret/data/hostmaster/rabbitmq_password": "mq-from-vault-91c2",
    "secret/data/hostmaster/api_pepper": "pepper-from-vault-77aa",
}


class KvV2(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?")[0].removeprefix("/v1/")
        if self.headers.get("X-Vault-Token") != TOKEN:
            self._answer(403, {"errors": ["permission denied"]})
        elif path in STORE:
            self._answer(200, {"data": {"data": {"value": STORE[path]}, "metadata": {"version": 1}}})
        else:
            self._answer(404, {"errors": []})

    def _answer(self, status: int, body: object) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def vault_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), KvV2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def vault_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vault_url: str) -> Path:
    for name in list(os.environ):
        if name.startswith("HOSTMASTER_"):
            monkeypatch.delenv(name)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "hostmaster_vault_token").write_text(TOKEN)  # the token itself from a mounted file
    monkeypatch.setenv("HOSTMASTER_SECRETS_DIR", str(secrets_dir))
    monkeypatch.setenv("HOSTMASTER_SECRETS_BACKENDS", '["env", "file", "vault"]')
    monkeypatch.setenv("HOSTMASTER_VAULT_URL", vault_url)
    return secrets_dir


def test_prod_takes_its_passwords_and_pepper_from_vault(vault_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "prod")

    settings = load_settings()

    assert settings.database_password is not None
    assert settings.database_password.get_secret_value() == "db-from-vault-5b7e"
    assert settings.pepper == b"pepper-from-vault-77aa"
    assert "db-from-vault-5b7e" not in repr(settings)


def test_a_tsig_secret_comes_from_vault_and_the_environment_still_wins(
    vault_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "dev")
    settings = load_settings()
    assert (
        tsig_secret(settings, "hostmaster-key.").get_secret_value()
        == STORE["secret/data/hostmaster/tsig/hostmaster-key"]
    )

    monkeypatch.setenv("HOSTMASTER_TSIG_SECRET_HOSTMASTER_KEY", "ZW52aXJvbm1lbnQ=")
    assert tsig_secret(settings, "hostmaster-key.").get_secret_value() == "ZW52aXJvbm1lbnQ="


def test_a_secret_vault_does_not_hold_is_missing_with_every_place_named(
    vault_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_ENV", "dev")
    with pytest.raises(SecretUnavailable) as missing:
        tsig_secret(load_settings(), "other-key.")
    assert "HOSTMASTER_TSIG_SECRET_OTHER_KEY" in missing.value.detail
    assert "hostmaster/tsig/other-key" in missing.value.detail


def test_a_token_vault_refuses_stops_the_start_without_showing_it(
    vault_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (vault_env / "hostmaster_vault_token").write_text("hvs.wrong-token")
    monkeypatch.setenv("APP_ENV", "prod")

    with pytest.raises(SettingsError, match="Vault refused") as refused:
        load_settings()
    assert "hvs.wrong-token" not in str(refused.value)


def test_an_unreachable_vault_is_a_clear_error(vault_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("HOSTMASTER_VAULT_URL", f"http://127.0.0.1:{closed}")
    monkeypatch.setenv("APP_ENV", "prod")

    with pytest.raises(SettingsError, match="Vault cannot be read"):
        load_settings()


def test_the_vault_back_end_without_a_token_says_what_is_missing(
    vault_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (vault_env / "hostmaster_vault_token").unlink()
    monkeypatch.setenv("APP_ENV", "prod")

    with pytest.raises(SettingsError, match="HOSTMASTER_VAULT_TOKEN"):
        load_settings()
