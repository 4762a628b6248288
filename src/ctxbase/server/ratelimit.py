"""Rate limits of one server process: requests per key, failed authentications per client.

Both live in memory: with several server processes each enforces its own share, which
bounds the total at (processes x limit). That is enough for both jobs here: keeping one
key from starving others, and making key guessing hopeless (a client that fails
``failures_per_minute`` times is refused, right keys included, until the minute is over).
"""

from __future__ import annotations

import threading
import time
from collections import deque


class KeyRateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute, bursts up to that many."""

    def __init__(self, per_minute: int) -> None:
        self._default = per_minute
        self._buckets: dict[object, tuple[float, float]] = {}  # key: (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key: object, per_minute: int | None = None) -> float:
        """0 if the request may go now, else the seconds until it may."""
        rate = per_minute or self._default
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(rate), now))
            tokens = min(float(rate), tokens + (now - last) * rate / 60.0)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) * 60.0 / rate


class FailureLimiter:
    """Failed authentications per client address in a sliding window."""

    def __init__(self, limit: int, *, window_seconds: float) -> None:
        self._limit = limit
        self._window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def failed(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            failures = self._failures.setdefault(client, deque())
            failures.append(now)
            self._trim(failures, now)
            if len(self._failures) > 100_000:  # forget the quietest clients first
                for quiet in [c for c, f in self._failures.items() if not f][:50_000]:
                    del self._failures[quiet]

    def blocked_for(self, client: str) -> float:
        """Seconds this client must wait before trying again (0: not blocked)."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(client)
            if not failures:
                return 0.0
            self._trim(failures, now)
            if len(failures) < self._limit:
                return 0.0
            return max(0.0, failures[0] + self._window - now)

    def _trim(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self._window:
            failures.popleft()
