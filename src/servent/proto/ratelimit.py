"""Token buckets for user-chosen rate limits (global and per torrent, up and down).

A bucket fills at ``rate`` bytes per second up to ``burst`` bytes.  Sending
``n`` bytes takes ``n`` tokens; the bucket may go into debt so a large write
(a 16 KiB block) is never starved by a small burst, and the debt is what
makes the *next* sender wait.  Pure: every call takes ``now``.

Several limits apply at once (global and per torrent): ask each bucket with
:func:`delay_for` and wait for the longest, then :meth:`TokenBucket.consume`
from all of them.
"""

from __future__ import annotations

import math


class TokenBucket:
    """A token bucket; ``rate=None`` (or 0) means unlimited."""

    def __init__(self, rate: float | None, now: float, burst: float | None = None) -> None:
        self._tokens = 0.0
        self._updated = now
        self.rate: float | None = None
        self.burst = 0.0
        self.set_rate(rate, now, burst)
        self._tokens = self.burst

    @property
    def unlimited(self) -> bool:
        return self.rate is None

    def set_rate(self, rate: float | None, now: float, burst: float | None = None) -> None:
        """Change the limit; ``burst`` defaults to one second of ``rate`` (at least 16 KiB)."""
        self._refill(now)
        if rate is not None and rate < 0:
            raise ValueError("rate must be >= 0")
        self.rate = rate if rate else None
        if self.rate is None:
            self.burst = math.inf
            return
        self.burst = burst if burst is not None else max(self.rate, 16384.0)
        if self.burst <= 0:
            raise ValueError("burst must be positive")
        self._tokens = min(self._tokens, self.burst)

    def _refill(self, now: float) -> None:
        if self.rate is not None and now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = max(self._updated, now)

    def available(self, now: float) -> float:
        """Tokens available now (negative while in debt; ``inf`` when unlimited)."""
        if self.rate is None:
            return math.inf
        self._refill(now)
        return self._tokens

    def delay(self, amount: float, now: float) -> float:
        """Seconds to wait before ``amount`` may be taken (0 if now).

        A request larger than ``burst`` only waits for the bucket to be full,
        and then runs into debt, so it cannot be blocked forever.
        """
        if self.rate is None:
            return 0.0
        self._refill(now)
        needed = min(amount, self.burst)
        if self._tokens >= needed:
            return 0.0
        return (needed - self._tokens) / self.rate

    def consume(self, amount: float, now: float) -> None:
        """Take ``amount`` tokens, into debt if needed (the caller waited for :meth:`delay`)."""
        if self.rate is None:
            return
        self._refill(now)
        self._tokens -= amount

    def try_consume(self, amount: float, now: float) -> bool:
        """Take ``amount`` tokens if no wait is needed; return whether it did."""
        if self.delay(amount, now) > 0:
            return False
        self.consume(amount, now)
        return True

    def next_available(self, amount: float, now: float) -> float:
        """The absolute time at which ``amount`` may be taken."""
        return now + self.delay(amount, now)


def delay_for(amount: float, now: float, *buckets: TokenBucket) -> float:
    """The wait before ``amount`` passes every bucket (global, per torrent ...)."""
    return max((bucket.delay(amount, now) for bucket in buckets), default=0.0)
