"""Requests per asking node: a token bucket each, so one node cannot keep a supernode busy."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from servent.proto.ratelimit import TokenBucket

__all__ = ["RequestLimiter"]

REQUESTS_PER_SECOND = 5.0
BURST = 20.0
TRACKED = 4096


class RequestLimiter:
    """``allow(peer, now)``: True while ``peer`` stays within its rate (the least recently
    seen peers are forgotten beyond ``tracked``, which only gives them a fresh burst)."""

    def __init__(
        self, rate: float = REQUESTS_PER_SECOND, burst: float = BURST, tracked: int = TRACKED
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.tracked = tracked
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()
        self.refused = 0

    def allow(self, peer: Hashable, now: float) -> bool:
        bucket = self._buckets.get(peer)
        if bucket is None:
            bucket = TokenBucket(self.rate, now, self.burst)
            self._buckets[peer] = bucket
            while len(self._buckets) > self.tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(peer)
        if bucket.try_consume(1.0, now):
            return True
        self.refused += 1
        return False
