"""The workers' broker, set before any actor is declared (import this module first)."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage

from service.dispatch import make_broker
from service.settings import get_settings
from workers.middleware import RequestIdMiddleware

settings = get_settings()
broker = make_broker(settings)
broker.add_middleware(CurrentMessage())
broker.add_middleware(RequestIdMiddleware())
dramatiq.set_broker(broker)
