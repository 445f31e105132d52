"""The secrets provider: one interface, back-ends chosen by settings.

Back-ends, asked in the order of ``HOSTMASTER_SECRETS_BACKENDS`` (default ``env,file``):

- ``env``: ``HOSTMASTER_<NAME>`` (``HOSTMASTER_DATABASE_PASSWORD``, ``HOSTMASTER_API_PEPPER``); a
  TSIG secret is ``HOSTMASTER_TSIG_SECRET_<KEY>`` (the key name upper-cased, each run of other
  characters made ``_``, the trailing dot dropped).
- ``file``: files in ``HOSTMASTER_SECRETS_DIR`` — a mounted Kubernetes/OpenShift secret volume
  or Docker secrets: ``hostmaster_<name>``, and ``tsig/<key name>`` for TSIG secrets.
- ``vault``: HashiCorp Vault KV version 2 (hvac): the secret ``<path>/<name>`` (``<path>/tsig/<key>``)
  in the mount ``HOSTMASTER_VAULT_MOUNT``, its field ``value``; token from the env or file back-end.

Values are ``SecretStr``: never logged, never in a repr, an error message or an answer.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import hvac
import hvac.exceptions
import requests
from pydantic import SecretStr

from service.core.errors import HostmasterError


class SecretUnavailable(HostmasterError):
    code = "secret_unavailable"


class SecretsBackend(Protocol):
    def get(self, name: str) -> SecretStr | None:
        """The secret called ``name`` (``database_password``, ``tsig/<key>``), or None if this back-end has none."""


class EnvironmentSecrets:
    def get(self, name: str) -> SecretStr | None:
        return _non_blank(os.environ.get(env_name(name)))


class FileSecrets:
    def __init__(self, directory: os.PathLike[str] | None) -> None:
        self.directory = directory

    def get(self, name: str) -> SecretStr | None:
        if self.directory is None:
            return None
        relative = name if name.startswith("tsig/") else f"hostmaster_{name}"
        if ".." in relative or relative.count("/") > 1:
            return None
        path = os.path.join(self.directory, relative)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as secret_file:
            return _non_blank(secret_file.read())


class VaultSecrets:
    """Vault KV v2; answers are kept for ``ttl_s`` so a worker does not ask for every UPDATE."""

    def __init__(
        self, *, url: str, token: SecretStr, mount: str, path: str, timeout_s: float, ttl_s: float = 60
    ) -> None:
        self.client = hvac.Client(url=url, token=token.get_secret_value(), timeout=timeout_s)
        self.mount = mount
        self.path = path.strip("/")
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, SecretStr | None]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> SecretStr | None:
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and time.monotonic() - cached[0] < self.ttl_s:
                return cached[1]
        value = self._read(name)
        with self._lock:
            self._cache[name] = (time.monotonic(), value)
        return value

    def _read(self, name: str) -> SecretStr | None:
        location = f"{self.path}/{name}"
        try:
            answer: dict[str, Any] = self.client.secrets.kv.v2.read_secret_version(
                path=location, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return None
        except hvac.exceptions.Forbidden as exc:
            raise SecretUnavailable(f"Vault refused to read {self.mount}/{location}: check the token's policy") from exc
        except (hvac.exceptions.VaultError, requests.RequestException) as exc:
            raise SecretUnavailable(f"Vault cannot be read ({type(exc).__name__}) for {location}") from exc
        value = answer.get("data", {}).get("data", {}).get("value")
        return _non_blank(value) if isinstance(value, str) else None


class SecretsSettings(Protocol):
    """What the provider reads of the settings (service/core/settings.py's Settings has it all):
    this module does not import the settings, which load their own secrets through it."""

    @property
    def secrets_dir(self) -> Path | None: ...
    @property
    def secrets_backends(self) -> Sequence[str]: ...
    @property
    def vault_url(self) -> str: ...
    @property
    def vault_mount(self) -> str: ...
    @property
    def vault_path(self) -> str: ...
    @property
    def vault_timeout_s(self) -> float: ...


class ChainedSecrets:
    def __init__(self, backends: Sequence[SecretsBackend]) -> None:
        self.backends = list(backends)

    def get(self, name: str) -> SecretStr | None:
        for backend in self.backends:
            value = backend.get(name)
            if value is not None:
                return value
        return None


def provider(settings: SecretsSettings) -> ChainedSecrets:
    """The back-ends the settings choose, in their order."""
    backends: list[SecretsBackend] = []
    local = ChainedSecrets([EnvironmentSecrets(), FileSecrets(settings.secrets_dir)])
    for name in settings.secrets_backends:
        if name == "env":
            backends.append(EnvironmentSecrets())
        elif name == "file":
            backends.append(FileSecrets(settings.secrets_dir))
        else:  # vault: its token comes from the local back-ends, never from Vault itself
            token = local.get("vault_token")
            if token is None or not settings.vault_url:
                raise SecretUnavailable(
                    "the vault secrets back-end needs HOSTMASTER_VAULT_URL and HOSTMASTER_VAULT_TOKEN "
                    "(or the file hostmaster_vault_token in the secrets directory)"
                )
            backends.append(
                _vault(settings.vault_url, token, settings.vault_mount, settings.vault_path, settings.vault_timeout_s)
            )
    return ChainedSecrets(backends)


_VAULTS: dict[tuple[str, str, str, str, float], VaultSecrets] = {}


def _vault(url: str, token: SecretStr, mount: str, path: str, timeout_s: float) -> VaultSecrets:
    """One Vault client (and cache) per place and token, kept for the process."""
    place = (url, token.get_secret_value(), mount, path, timeout_s)
    if place not in _VAULTS:
        _VAULTS[place] = VaultSecrets(url=url, token=token, mount=mount, path=path, timeout_s=timeout_s)
    return _VAULTS[place]


def env_name(name: str) -> str:
    if name.startswith("tsig/"):
        return tsig_env_name(name[len("tsig/") :])
    return "HOSTMASTER_" + re.sub(r"[^A-Z0-9]+", "_", name.upper())


def tsig_env_name(key_name: str) -> str:
    return "HOSTMASTER_TSIG_SECRET_" + re.sub(r"[^A-Z0-9]+", "_", key_name.rstrip(".").upper()).strip("_")


def tsig_secret(settings: SecretsSettings, key_name: str) -> SecretStr:
    """The secret of TSIG key ``key_name``, from the back-ends the settings choose."""
    chain = provider(settings)
    file_name = key_name.rstrip(".")
    value = chain.get(f"tsig/{file_name}") if "/" not in file_name else None
    if value is None:
        raise SecretUnavailable(
            f"no secret for TSIG key {key_name}: set {tsig_env_name(key_name)} or the file tsig/{file_name} "
            f"in the secrets directory (HOSTMASTER_SECRETS_DIR), or {settings.vault_path}/tsig/{file_name} in Vault"
        )
    return value


def _non_blank(value: str | None) -> SecretStr | None:
    value = (value or "").strip()
    return SecretStr(value) if value else None
