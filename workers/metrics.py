"""The workers' own metrics, beside Dramatiq's (messages processed, failed, retried per actor).

Worker processes write them to the multiprocess directory that workers/__main__.py sets up, and
the exposition process Dramatiq forks (its Prometheus middleware) serves them all on
``HOSTMASTER_METRICS_PORT``. Metric objects are made on first use, in the worker process.
"""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import Histogram


@lru_cache(maxsize=1)
def _dns_update_seconds() -> Histogram:
    return Histogram(
        "hostmaster_dns_update_seconds",
        "Round trip of one RFC 2136 UPDATE message to a zone's primary, by outcome.",
        ["outcome"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    )


def observe_update(seconds: float, outcome: str) -> None:
    _dns_update_seconds().labels(outcome).observe(seconds)
