"""Where secrets come from: the environment first, then files in the secrets directory.

TSIG secrets are looked up by key name when a worker signs an UPDATE:
``HOSTMASTER_TSIG_SECRET_<KEY>`` (the key name upper-cased, each run of other
characters made ``_``, the trailing dot dropped), or the file ``tsig/<key name>``
(without the trailing dot) in ``HOSTMASTER_SECRETS_DIR`` — the layout of a mounted
Kubernetes/OpenShift secret volume. Values are ``SecretStr`` and never logged.
"""

from __future__ import annotations

import os
import re

from pydantic import SecretStr

from service.errors import HostmasterError
from service.settings import Settings


class SecretUnavailable(HostmasterError):
    code = "secret_unavailable"


def tsig_env_name(key_name: str) -> str:
    return "HOSTMASTER_TSIG_SECRET_" + re.sub(r"[^A-Z0-9]+", "_", key_name.rstrip(".").upper()).strip("_")


def tsig_secret(settings: Settings, key_name: str) -> SecretStr:
    env_name = tsig_env_name(key_name)
    value = os.environ.get(env_name, "").strip()
    if value:
        return SecretStr(value)
    file_name = key_name.rstrip(".")
    if settings.secrets_dir is not None and "/" not in file_name:
        path = settings.secrets_dir / "tsig" / file_name
        value = path.read_text().strip() if path.is_file() else ""
        if value:
            return SecretStr(value)
    raise SecretUnavailable(
        f"no secret for TSIG key {key_name}: set {env_name} or the file tsig/{file_name} "
        "in the secrets directory (HOSTMASTER_SECRETS_DIR)"
    )
