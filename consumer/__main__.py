"""``python -m consumer``: the Kafka entry point, one more client of the API.

SIGTERM or SIGINT: the message in hand is finished and committed, then the consumer leaves
its group. A crash loses nothing: what was not committed is read again, and the event id as
idempotency key makes that harmless.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from consumer import metrics
from consumer.api import ApiCaller
from consumer.runner import Runner
from service.core import kafka_clients
from service.core.logs import configure_logging
from service.core.secrets import SecretUnavailable, provider
from service.core.settings import SettingsError, get_settings

logger = logging.getLogger("consumer")


def main() -> int:
    try:
        settings = get_settings()
        key = settings.consumer_api_key or provider(settings).get("consumer_api_key")
    except (SettingsError, SecretUnavailable) as exc:
        print(f"hostmaster consumer: {exc}", file=sys.stderr)
        return 2
    if key is None:
        print(
            "hostmaster consumer: no API key: set HOSTMASTER_CONSUMER_API_KEY or the file "
            "hostmaster_consumer_api_key in the secrets directory",
            file=sys.stderr,
        )
        return 2
    configure_logging("consumer", settings.log_level)
    metrics.serve(settings.metrics_host, settings.metrics_port)
    stop = threading.Event()

    def ask_to_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("stopping after the message in hand (%s)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)
    api = ApiCaller(
        settings.api_url,
        key.get_secret_value(),
        timeout_s=settings.kafka_timeout_s,
        retry_max_s=settings.consumer_retry_max_s,
        stop=stop,
    )
    kafka_consumer = kafka_clients.consumer(settings)
    kafka_producer = kafka_clients.producer(settings)
    try:
        Runner(settings, kafka_consumer, kafka_producer, api, stop).run()
    finally:
        kafka_producer.flush(timeout=settings.kafka_timeout_s)
        kafka_producer.close(timeout=settings.kafka_timeout_s)
        kafka_consumer.close()  # leaves the group
        api.close()
        logger.info("consumer stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
