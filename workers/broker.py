"""The workers' broker, set before any actor is declared (import this module first)."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.middleware import CurrentMessage

from service.core.dispatch import make_broker
from service.core.settings import get_settings
from workers.middleware import RequestIdOfMessage

settings = get_settings()
broker = make_broker(settings)
broker.add_middleware(CurrentMessage())
broker.add_middleware(RequestIdOfMessage())
if settings.metrics_port and "dramatiq_prom_db" in os.environ:  # set up by workers/__main__.py
    from dramatiq.middleware.prometheus import Prometheus  # reads its settings when imported

    broker.add_middleware(Prometheus())
dramatiq.set_broker(broker)
