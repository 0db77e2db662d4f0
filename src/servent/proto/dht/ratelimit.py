"""Per-IP query rate limiting with temporary blocking.

Each source IP gets a token bucket; an IP that empties it is blocked for
``block_duration`` seconds and everything it sends is dropped before parsing.
The table only holds recently active IPs (idle ones are forgotten during
maintenance), so memory stays bounded by traffic, not by history.
"""

from __future__ import annotations


class QueryRateLimiter:
    __slots__ = ("_blocked", "_buckets", "_burst", "_duration", "_max_tracked", "_rate")

    def __init__(self, rate: float, burst: float, block_duration: float, max_tracked: int) -> None:
        self._rate = rate
        self._burst = burst
        self._duration = block_duration
        self._max_tracked = max_tracked
        self._buckets: dict[str, list[float]] = {}
        self._blocked: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def is_blocked(self, ip: str, now: float) -> bool:
        until = self._blocked.get(ip)
        if until is None:
            return False
        if now < until:
            return True
        del self._blocked[ip]
        return False

    def allow(self, ip: str, now: float) -> bool:
        """Spend one token for a query from ``ip``; block the IP when it has none left."""
        if self._rate <= 0:
            return True
        state = self._buckets.get(ip)
        if state is None:
            buckets = self._buckets
            if len(buckets) >= self._max_tracked:
                del buckets[next(iter(buckets))]  # forget the longest-known IP: O(1)
            buckets[ip] = [self._burst - 1.0, now]
            return True
        tokens = min(self._burst, state[0] + (now - state[1]) * self._rate)
        state[1] = now
        if tokens < 1.0:
            state[0] = tokens
            self._blocked[ip] = now + self._duration
            if len(self._blocked) > self._max_tracked:
                self._expire_blocks(now)
            return False
        state[0] = tokens - 1.0
        return True

    def forget_idle(self, now: float) -> None:
        """Drop IPs whose bucket has refilled (they would start full anyway)."""
        refill = self._burst / self._rate if self._rate > 0 else 0.0
        stale = [ip for ip, state in self._buckets.items() if now - state[1] >= refill]
        for ip in stale:
            del self._buckets[ip]
        self._expire_blocks(now)

    def _expire_blocks(self, now: float) -> None:
        for ip in [ip for ip, until in self._blocked.items() if until <= now]:
            del self._blocked[ip]
        while len(self._blocked) > self._max_tracked:
            del self._blocked[next(iter(self._blocked))]

    def blocked_count(self) -> int:
        return len(self._blocked)
