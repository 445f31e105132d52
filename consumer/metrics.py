"""The consumer's metrics, served on ``HOSTMASTER_METRICS_PORT`` (0: not served)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)
EVENTS = Counter(
    "hostmaster_consumer_events",
    "Events decided (processed: the API answered 2xx; dead_lettered) and API calls sent again (retried).",
    ["outcome"],
    registry=REGISTRY,
)
LAG = Gauge(
    "hostmaster_consumer_lag",
    "Events on the partition not yet read by this consumer.",
    ["topic", "partition"],
    registry=REGISTRY,
)


def serve(host: str, port: int) -> None:
    if port:
        start_http_server(port, addr=host, registry=REGISTRY)
