"""A transfer rate over a sliding window, for what users see (``servent list``, the web UI).

Why not a smoothed average updated on a timer: a timer-sampled average shows
0 until the first sample after a burst and keeps showing a decaying rate for
seconds after the transfer stopped.  Here every byte count lands in a small
ring of time slots as it happens, and a reading at ``now`` sums only the slots
inside the window, so the figure is current whenever it is read and falls to
zero one window after the last byte.  Pure: every call takes ``now``.
"""

from __future__ import annotations

import math

__all__ = ["RateMeter"]

#: Length of the window a rate is averaged over, in seconds.
DEFAULT_WINDOW = 2.0
#: Width of one time slot of the ring, in seconds.
DEFAULT_SLOT = 0.25


class RateMeter:
    """Bytes per second over the last ``window`` seconds (a ring of ``slot``-wide counters)."""

    __slots__ = ("_counts", "_first", "_index", "_slot", "_slot_end", "_slot_number", "total")

    def __init__(self, window: float = DEFAULT_WINDOW, slot: float = DEFAULT_SLOT) -> None:
        if slot <= 0 or window < slot:
            raise ValueError("need 0 < slot <= window")
        self._slot = slot
        # One slot more than the window holds: the newest slot is only partly elapsed.
        self._counts = [0] * (math.ceil(window / slot) + 1)
        self._slot_number: int | None = None
        self._slot_end = -math.inf  # the first call moves to the slot of its time
        self._index = 0
        self._first: float | None = None
        #: Every byte ever counted.
        self.total = 0

    def add(self, count: int, now: float) -> None:
        """Count ``count`` bytes moved at ``now`` (called per block: the common case is
        one comparison and one addition)."""
        if now >= self._slot_end:  # also the first call: the end starts at -inf
            if self._first is None:
                self._first = now
            self._advance(now)
        self._counts[self._index] += count
        self.total += count

    def rate(self, now: float) -> float:
        """Bytes per second over the window ending at ``now`` (0.0 once the window is quiet)."""
        if self._first is None:
            return 0.0
        self._advance(now)
        # A transfer that began less than a window ago is averaged over its own age
        # (at least one second, so the first block does not read as a spike).
        covered = (len(self._counts) - 1) * self._slot + now % self._slot
        span = min(covered, max(now - self._first, 1.0))
        return sum(self._counts) / span

    def _advance(self, now: float) -> None:
        """Move to the slot of ``now``, emptying the slots time has moved past."""
        current = int(now // self._slot)
        last = self._slot_number
        if last is not None and current <= last:
            return  # still the same slot (or a clock that stepped back: keep counting)
        size = len(self._counts)
        self._slot_number = current
        self._slot_end = (current + 1) * self._slot
        self._index = current % size
        if last is None or current - last >= size:
            self._counts = [0] * size
            return
        for number in range(last + 1, current + 1):
            self._counts[number % size] = 0
