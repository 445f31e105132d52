"""One Settings object for every process, loaded once.

``APP_ENV`` (dev, uta or prod) selects ``envs/.env.<env>``; environment variables
override the file; secrets are read from the environment or from files in
``HOSTMASTER_SECRETS_DIR`` (Kubernetes/OpenShift secret volumes, Docker secrets),
never from a committed file.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.models import MAX_VALUES
from service.core.secrets import SecretUnavailable, provider

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # service/core/settings.py
ENVS_DIR = PROJECT_ROOT / "envs"


def deployed_root() -> Path:
    """Where ``envs/`` and relative paths are: the source tree, or — installed non-editable, as the
    image is (the package in site-packages, no envs/ beside it) — the working directory holding
    ``envs/`` (the image's /app)."""
    if ENVS_DIR.is_dir():
        return PROJECT_ROOT
    here = Path.cwd()
    return here if (here / "envs").is_dir() else PROJECT_ROOT


AppEnv = Literal["dev", "uta", "prod"]

# Values that stand in for a secret in examples and development defaults.
SECRET_FIELDS = ("database_password", "rabbitmq_password", "api_pepper")
PLACEHOLDER_SECRETS = frozenset({"", "changethis", "changeme", "guest", "secret", "password"})


class SettingsError(RuntimeError):
    """The configuration cannot be used; the message says what to change."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOSTMASTER_", extra="ignore")

    app_env: AppEnv = Field(
        default="dev",
        validation_alias="APP_ENV",
        description="Environment: selects envs/.env.<APP_ENV>; uta and prod refuse placeholder secrets.",
    )
    log_level: str = Field(default="INFO", description="Log level of every process (DEBUG, INFO, WARNING, ERROR).")

    # PostgreSQL. The password is kept apart from the URL so that it can come from a secret.
    database_url: str = Field(
        default="postgresql+psycopg2://postgres@127.0.0.1:5432/hostmaster",
        description="PostgreSQL URL (SQLAlchemy form), without the password.",
    )
    database_password: SecretStr | None = Field(default=None, description="PostgreSQL password (a secret).")
    database_timeout_s: int = Field(default=5, ge=1, description="Connect timeout for PostgreSQL, seconds.")

    # RabbitMQ (Dramatiq broker).
    rabbitmq_url: str = Field(
        default="amqp://guest@127.0.0.1:5672/%2F", description="RabbitMQ URL (AMQP), without the password."
    )
    rabbitmq_password: SecretStr | None = Field(default=None, description="RabbitMQ password (a secret).")
    queue_name: str = Field(
        default="dns",
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="Dramatiq queue of the workers; its dead letters are in <queue>.XQ.",
    )

    # Worker retry policy for transient DNS failures.
    max_retries: int = Field(
        default=5, ge=0, description="Attempts after the first for a transient failure, before dead-lettering."
    )
    min_backoff_ms: int = Field(
        default=1000, ge=1, description="Shortest wait before a retry, milliseconds (doubles each time)."
    )
    max_backoff_ms: int = Field(default=300_000, ge=1, description="Longest wait before a retry, milliseconds.")
    dns_timeout_s: float = Field(
        default=5.0, gt=0, description="Timeout of each DNS exchange (UPDATE, query, AXFR), seconds."
    )
    apply_time_limit_s: int = Field(default=900, ge=10, description="Longest one attempt at a request may take.")
    coalesce_max_requests: int = Field(
        default=500,
        ge=1,
        description="Most requests a worker applies together: with the request of its message, others waiting "
        "for the same zones, their RRsets in shared UPDATEs (1: each request alone).",
    )

    # Where mounted secret files live (TSIG secrets under tsig/<key name>).
    secrets_dir: Path | None = Field(
        default=None, description="Directory of mounted secret files (TSIG secrets under tsig/<key name>)."
    )
    # Mixed into every stored API key hash; a secret like the passwords.
    api_pepper: SecretStr | None = Field(default=None, description="Mixed into every stored API key hash (a secret).")
    # The secrets provider: back-ends asked in this order (service.core.secrets).
    secrets_backends: list[Literal["env", "file", "vault"]] = Field(
        default=["env", "file"], description="Where secrets are looked up, in order: env, file, vault."
    )
    vault_url: str = Field(default="", description="Vault address, for the vault back-end.")
    vault_token: SecretStr | None = Field(default=None, description="Vault token (a secret).")
    vault_mount: str = Field(default="secret", description="Vault KV v2 mount.")
    vault_path: str = Field(default="hostmaster", description="Path of Hostmaster's secrets under the mount.")
    vault_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of each Vault call, seconds.")

    # Limits.
    rate_limit_per_s: float = Field(default=50.0, gt=0, description="Requests a second per API client, on average.")
    rate_limit_burst: int = Field(default=100, ge=1, description="Requests an API client may send at once.")
    max_values: int = Field(default=MAX_VALUES, ge=1, le=1000, description="Values in one RRset.")
    auth_cache_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long an API process trusts a key it checked against the database without reading the "
        "client again; a revocation, a rotation or a change of scopes or zones takes effect within this time (0: read "
        "the client on every call).",
    )
    quota_rrsets: int | None = Field(
        default=20_000,
        ge=0,
        description="RRsets a client may have created, unless an admin set its own quota (`none`: no limit; admins "
        "have none).",
    )
    quota_changes_per_day: int | None = Field(
        default=200_000,
        ge=0,
        description="Changes a client's writes may hold in one UTC day, unless an admin set its own quota (`none`: "
        "no limit; admins have none).",
    )

    # Recovery (service/operations/recovery.py): no request is left in limbo.
    recovery_requeue_after_s: int = Field(default=60, ge=1, description="Queue again a request queued this long.")
    request_deadline_s: int = Field(default=3600, ge=1, description="Fail a request not ended this long after it came.")
    recovery_interval_s: float = Field(
        default=30.0, gt=0, description="Seconds between two passes of the recovery job."
    )
    abandon_after_s: int = Field(
        default=60, ge=1, description="End as abandoned a request still unplanned this long after it came."
    )
    idempotency_retention_h: int = Field(
        default=24, ge=24, description="Hours an Idempotency-Key keeps answering with its request."
    )
    request_retention_days: int = Field(
        default=90,
        ge=1,
        description="Days an ended request, with its steps and changes, is kept after it ended; the recovery job "
        "deletes older ones.",
    )
    reconciliation_retention_days: int = Field(
        default=14,
        ge=1,
        description="Days a reconciliation report is kept after it finished (each zone's latest is always kept).",
    )
    retention_batch: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Most requests (or reports) one pruning statement deletes; a recovery pass runs at most 10.",
    )
    # Reconciliation (workers/reconcile.py): each zone's AXFR compared with the desired state.
    reconcile_interval_s: float = Field(
        default=300.0, ge=0, description="Reconcile every zone this often (0: only on demand)."
    )

    # Kafka (the consumer, and the workers' results).
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    kafka_topic: str = Field(default="dns.requests", description="Topic of request events.")
    kafka_dlq_topic: str = Field(
        default="dns.requests.dlq", description="Topic of events that were refused (dead letters)."
    )
    kafka_results_topic: str = Field(
        default="dns.requests.results", description="Topic of results (request ended, or event refused)."
    )
    kafka_topic_clients: dict[str, str] = Field(
        default_factory=dict,
        description="Topics bound to the API clients whose events they carry, as JSON: "
        '`{"dns.requests": "team-a", "team-b.requests": "team-b"}`. An event acts as its topic\'s client, with '
        "that client's rights (the consumer's own key needs only the delegate scope); Kafka ACLs decide who may "
        "write each topic. A bound topic other than HOSTMASTER_KAFKA_TOPIC has its dead letters in `<topic>.dlq` "
        "and its results in `<topic>.results`. Empty: HOSTMASTER_KAFKA_TOPIC alone, its events acting as the "
        "consumer's own client.",
    )
    kafka_group_id: str = Field(default="hostmaster", description="Consumer group of the Kafka consumer.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str | None = Field(
        default=None, description="SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password (a secret).")
    kafka_ssl_cafile: str | None = Field(default=None, description="CA file for SSL to Kafka.")
    kafka_session_timeout_ms: int = Field(
        default=10_000, ge=6_000, description="Consumer group session timeout, milliseconds."
    )
    kafka_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of each Kafka request, seconds.")
    consumer_max_message_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest event the consumer reads; larger ones are dead-lettered."
    )
    consumer_retry_max_s: float = Field(default=30.0, gt=0, description="Longest wait between tries of the API.")
    consumer_batch: int = Field(
        default=100,
        ge=1,
        le=500,
        description="Events the consumer fetches at a time and sends to the API in one call "
        "(`POST /api/v2/requests:batch`, those about one name in order); 1: each event through its own REST call.",
    )
    consumer_stats_interval_s: float = Field(
        default=30.0, gt=0, description="Seconds between two statistics lines of the consumer."
    )
    # The API the consumer calls, as its own client (key from the secrets provider: consumer_api_key).
    api_url: str = Field(default="http://127.0.0.1:8000", description="The API the Kafka consumer calls.")
    consumer_api_key: SecretStr | None = Field(default=None, description="The Kafka consumer's API key (a secret).")

    # HTTP.
    docs_enabled: bool | None = Field(default=None, description="Serve /docs and /openapi.json (default: not in prod).")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS; none by default.")

    # Metrics (the API serves /metrics on its own port).
    metrics_port: int = Field(
        default=9191, ge=0, le=65535, description="Port of /metrics of the workers and of the Kafka consumer (0: off)."
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address the workers' and the consumer's /metrics listen on."
    )

    # API.
    api_host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(default=8000, description="Port the API listens on.")
    max_body_bytes: int = Field(default=4_194_304, ge=1024, description="Largest request body, bytes (413 beyond).")
    max_changes: int = Field(default=10_000, ge=1, description="Most changes in one change set.")
    max_batch_writes: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Most writes in one `POST /api/v2/requests:batch` (each its own request).",
    )
    write_group_max: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Most v1 writes one API process accepts together when they arrive at once (group commit: one "
        "planning transaction and one commit for all, each still its own request); 1 accepts every write alone.",
    )

    # Web console (/ui).
    console_session_minutes: int = Field(
        default=480,
        ge=1,
        le=10_080,
        description="How long a console sign-in lasts; signing out, a key rotation or a revocation ends it sooner.",
    )
    console_logs_url: str = Field(
        default="",
        max_length=2048,
        description="Link from a request's page to its log lines: a URL with `{request_id}` in it, e.g. a "
        "log search (empty: the page shows the request id to search for).",
    )
    console_rabbitmq_url: str = Field(
        default="http://127.0.0.1:15672/",
        max_length=2048,
        description="The RabbitMQ management UI the console's health page links to (empty: no link).",
    )

    @field_validator("console_logs_url", "console_rabbitmq_url")
    @classmethod
    def _web_link(cls, value: str) -> str:
        """A link the console shows: http(s) or nothing, never a `javascript:` URL."""
        value = value.strip()
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("give an http:// or https:// URL, or nothing")
        return value

    @field_validator("quota_rrsets", "quota_changes_per_day", mode="before")
    @classmethod
    def _no_limit(cls, value: object) -> object:
        """``none`` (or nothing) is no limit."""
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    def refuse_placeholder_secrets(self) -> None:
        """Outside dev, every secret must be set, and not to a well-known placeholder."""
        if self.app_env == "dev":
            return
        problems = []
        for name in SECRET_FIELDS:
            value: SecretStr | None = getattr(self, name)
            if value is None or value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                problems.append(f"HOSTMASTER_{name.upper()}")
        if problems:
            raise SettingsError(
                f"APP_ENV={self.app_env} refuses to start with a missing or placeholder secret: "
                f"{', '.join(problems)}. Set each in the environment, as a file of that name "
                "(lower case) in HOSTMASTER_SECRETS_DIR, or in Vault."
            )

    @property
    def pepper(self) -> bytes:
        """The API key pepper; in dev without one, a fixed development value (logged once)."""
        if self.api_pepper is not None and self.api_pepper.get_secret_value():
            return self.api_pepper.get_secret_value().encode()
        return b"hostmaster-development-pepper"

    @property
    def serve_docs(self) -> bool:
        return self.docs_enabled if self.docs_enabled is not None else self.app_env != "prod"

    @property
    def database_dsn(self) -> str:
        return _with_password(self.database_url, self.database_password)

    @property
    def rabbitmq_dsn(self) -> str:
        return _with_password(self.rabbitmq_url, self.rabbitmq_password)


def _with_password(url: str, password: SecretStr | None) -> str:
    if password is None:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password.get_secret_value(), safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings() -> Settings:
    """Build settings from ``envs/.env.<APP_ENV>``, the environment and the secrets directory."""
    app_env = os.environ.get("APP_ENV", "dev")
    if app_env not in ("dev", "uta", "prod"):
        raise SettingsError(f"APP_ENV must be dev, uta or prod, not {app_env!r}")
    env_file = deployed_root() / "envs" / f".env.{app_env}"
    secrets_dir = os.environ.get("HOSTMASTER_SECRETS_DIR") or _value_in_env_file(env_file, "HOSTMASTER_SECRETS_DIR")
    secrets_path = _resolve(secrets_dir) if secrets_dir else None
    kwargs: dict[str, object] = {"_env_file": env_file if env_file.exists() else None}
    if secrets_path is not None and secrets_path.is_dir():
        kwargs["_secrets_dir"] = secrets_path
    try:
        settings = Settings(**kwargs)  # type: ignore[arg-type]
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise SettingsError(f"invalid configuration: {exc}") from exc
    settings.secrets_dir = secrets_path
    if "vault" in settings.secrets_backends:
        _fill_from_vault(settings)
    settings.refuse_placeholder_secrets()
    return settings


def _fill_from_vault(settings: Settings) -> None:
    """The passwords and the pepper not set locally, from Vault."""
    try:
        chain = provider(settings)
        for name in SECRET_FIELDS:
            if getattr(settings, name) is None:
                setattr(settings, name, chain.get(name))
    except SecretUnavailable as exc:
        raise SettingsError(str(exc)) from exc


def _resolve(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else deployed_root() / candidate


def _value_in_env_file(env_file: Path, key: str) -> str | None:
    if not env_file.exists():
        return None
    for line in env_file.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip().strip("'\"")
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
