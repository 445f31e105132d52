"""The recovery job's loop (``hostmaster run recovery``): a recovery pass and the reconciliation
schedule, again and again until it is asked to stop."""

from __future__ import annotations

import logging
import signal
import threading

from db.engine import make_engine
from service.core.dispatch import Dispatcher, make_broker
from service.core.logs import configure_logging
from service.core.settings import Settings
from service.operations import reconciliation, recovery

logger = logging.getLogger(__name__)


def run_recovery(settings: Settings) -> int:
    """One recovery pass every ``recovery_interval_s`` until SIGTERM or SIGINT; each pass also
    queues the reconciliations that are due (``reconcile_interval_s``; 0: none)."""
    configure_logging("recovery", settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    engine = make_engine(settings.database_dsn, pool_size=1, max_overflow=1)
    broker = make_broker(settings)
    dispatcher = Dispatcher(broker, settings.queue_name)
    logger.info(
        "recovery every %.0f s; each zone reconciled every %.0f s (0: only on demand)",
        settings.recovery_interval_s,
        settings.reconcile_interval_s,
    )
    while not stop.is_set():
        try:
            recovery.recover(engine, dispatcher, settings)
        except Exception:  # a pass that fails (database away) is tried again next time
            logger.exception("recovery pass failed")
        try:
            reconciliation.schedule(engine, dispatcher, settings)
        except Exception:  # likewise
            logger.exception("reconciliation schedule failed")
        stop.wait(settings.recovery_interval_s)
    broker.close()
    engine.dispose()
    return 0
