"""A per-client token bucket: ``rate`` requests a second on average, ``burst`` at once.

It lives in each API process; with N processes a client gets up to N times the rate. That
bounds a runaway client without a shared store; a shared limit belongs in front (the route).
Names include callers' addresses (unauthenticated guesses), so the buckets are bounded too: past
``max_names``, the buckets that have refilled are forgotten (a new one starts full: nothing is
lost), then, if still too many, those idle longest.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBuckets:
    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, max_names: int = 10_000
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_names = max_names
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, name: str, cost: int = 1) -> float:
        """0 when ``name`` may go on (``cost`` tokens taken); else the seconds until it may (none taken)."""
        with self._lock:
            now = self.clock()
            if name not in self._buckets and len(self._buckets) >= self.max_names:
                self._forget(now)
            tokens, last = self._buckets.get(name, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._buckets[name] = (tokens - cost, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (cost - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget(self, now: float) -> None:
        """Room for new names: the full buckets go, then the idlest, down to 90 % of the bound."""
        self._buckets = {
            name: (tokens, last)
            for name, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate < self.burst
        }
        keep = int(self.max_names * 0.9)
        if len(self._buckets) > keep:
            idlest_first = sorted(self._buckets.items(), key=lambda item: item[1][1])
            self._buckets = dict(idlest_first[len(self._buckets) - keep :])


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))
