"""A small supervisor: keep a process running, restart it when it dies, stop it on request.

Dramatiq's master exits when one of its worker processes dies (SIGKILL, out of memory); its
messages are redelivered, but nothing would take them. `hostmaster run worker` runs the
worker under this supervisor: an exit that was not asked for is followed by a restart, after
a pause that doubles up to 30 s while the process keeps dying young. SIGTERM or SIGINT are
passed on, and the supervisor ends when the process has. `hostmaster run consumer` runs the
Kafka consumer the same way; its exit code 2 says its configuration is wrong (no key, a setting
that does not parse), which starting it again cannot mend: the supervisor ends with it, after
the process said why. (The worker's 2 is Dramatiq's for an import that failed, which a broker
not up yet can cause: the worker is started again.)
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from types import FrameType

logger = logging.getLogger(__name__)

MAX_PAUSE_S = 30.0
HEALTHY_AFTER_S = 60.0  # a process that lived this long starts the pauses over


def supervise(
    command: Sequence[str], *, name: str, stop_timeout_s: float = 30.0, final: frozenset[int] = frozenset()
) -> int:
    """Run ``command`` until asked to stop; an exit code in ``final`` ends the supervisor with it."""
    stop = threading.Event()
    child: subprocess.Popen[bytes] | None = None

    def ask_to_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, ask_to_stop)
    pause = 1.0
    while not stop.is_set():
        started = time.monotonic()
        child = subprocess.Popen(list(command))  # noqa: S603 - our own command line, not input
        logger.info("%s started (pid %d)", name, child.pid)
        code = child.wait()
        if stop.is_set():
            logger.info("%s stopped (exit %d)", name, code)
            return 0
        if code in final:
            logger.error("%s exited with %d: its configuration is wrong; not starting it again", name, code)
            return code
        lived = time.monotonic() - started
        pause = 1.0 if lived > HEALTHY_AFTER_S else min(MAX_PAUSE_S, pause * 2)
        logger.error(
            "%s exited with %d after %.0f s; starting it again in %.0f s",
            name,
            code,
            lived,
            pause,
            extra={"exit_code": code},
        )
        stop.wait(pause)
    if child is not None and child.poll() is None:
        try:
            child.wait(timeout=stop_timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0
