"""Which tracker to ask next and when (BEP 12 tiers, announce intervals).

Pure: the caller passes ``now`` and a seeded RNG.  Each tier is shuffled
once; a tracker that answers is promoted to the front of its tier; a failure
moves on to the next tracker, then the next tier, and after a full round the
whole list is retried with a growing (bounded) back-off.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

MIN_INTERVAL = 30.0
MAX_BACKOFF = 3600.0


class TrackerTiers:
    def __init__(
        self,
        tiers: Sequence[Sequence[str]],
        *,
        rng: random.Random,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        #: No tracker is asked again sooner than this (tests on loopback lower it).
        self.min_interval = min_interval
        self._tiers: list[list[str]] = []
        for tier in tiers:
            urls = list(dict.fromkeys(u for u in tier if u))
            if urls:
                rng.shuffle(urls)
                self._tiers.append(urls)
        self._tier = 0
        self._index = 0
        self._failures = 0
        self._next_at = 0.0

    @property
    def tiers(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(t) for t in self._tiers)

    def current(self) -> str | None:
        """The tracker to announce to next (None when there are none)."""
        if not self._tiers:
            return None
        return self._tiers[self._tier][self._index]

    def next_timer(self) -> float | None:
        return self._next_at if self._tiers else None

    def due(self, now: float) -> bool:
        return bool(self._tiers) and now >= self._next_at

    def succeeded(
        self, url: str, now: float, interval: float, min_interval: float | None = None
    ) -> None:
        """``url`` answered: promote it and wait ``interval`` (honouring ``min interval``)."""
        for tier in self._tiers:
            if url in tier:
                tier.remove(url)
                tier.insert(0, url)
                break
        self._tier = self._index = 0
        self._failures = 0
        wait = max(interval, min_interval or 0.0, self.min_interval)
        self._next_at = now + wait

    def failed(self, url: str, now: float, *, base_backoff: float = 15.0) -> None:
        """``url`` failed: try the next one now; after a full round, back off."""
        if not self._tiers or url != self.current():
            return
        self._index += 1
        if self._index >= len(self._tiers[self._tier]):
            self._index = 0
            self._tier += 1
        if self._tier >= len(self._tiers):
            self._tier = 0
            self._failures += 1
            self._next_at = now + min(MAX_BACKOFF, base_backoff * 2 ** (self._failures - 1))
        else:
            self._next_at = now
