"""A per-client token bucket: ``rate`` requests a second on average, ``burst`` at once.

It lives in each API process; with N processes a client gets up to N times the rate. That
bounds a runaway client without a shared store; a shared limit belongs in front (the route).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBuckets:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, name: str, cost: int = 1) -> float:
        """0 when ``name`` may go on (``cost`` tokens taken); else the seconds until it may (none taken)."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(name, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[name] = (tokens - cost, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (cost - tokens) / self.rate


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))
