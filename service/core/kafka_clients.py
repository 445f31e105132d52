"""kafka-python, set up from the settings: the boundary where its exceptions become ours."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from service.core.settings import Settings


def _security(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism:
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile:
        config["ssl_cafile"] = settings.kafka_ssl_cafile
    return config


def topics(settings: Settings) -> list[str]:
    """The request topics the consumer reads: the bound ones, or HOSTMASTER_KAFKA_TOPIC alone."""
    return sorted(settings.kafka_topic_clients) or [settings.kafka_topic]


def client_of(settings: Settings, topic: str) -> str | None:
    """The API client the events of ``topic`` act as; None: the consumer's own (no topic is bound)."""
    return settings.kafka_topic_clients.get(topic)


def dead_letters_topic(settings: Settings, topic: str) -> str:
    """Where the events of ``topic`` that were refused go: its client reads them, no other."""
    return settings.kafka_dlq_topic if topic == settings.kafka_topic else f"{topic}.dlq"


def results_topic(settings: Settings, topic: str | None) -> str:
    """Where the results of the events of ``topic`` go: its client reads them, no other."""
    return settings.kafka_results_topic if topic in (None, settings.kafka_topic) else f"{topic}.results"


def consumer(settings: Settings) -> KafkaConsumer:
    """A group member with manual commits, reading from the earliest offset it has not committed."""
    return KafkaConsumer(
        *topics(settings),
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        group_id=settings.kafka_group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=50,
        max_poll_interval_ms=600_000,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(1000, settings.kafka_session_timeout_ms // 3),
        request_timeout_ms=max(30_000, settings.kafka_session_timeout_ms + 5_000),
        client_id="hostmaster-consumer",
        **_security(settings),
    )


def producer(settings: Settings) -> KafkaProducer:
    """acks=all: a dead letter or a result is written before the offset moves on."""
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        acks="all",
        retries=5,
        linger_ms=5,
        request_timeout_ms=int(settings.kafka_timeout_s * 1000),
        max_block_ms=int(settings.kafka_timeout_s * 1000),
        client_id="hostmaster",
        **_security(settings),
    )
