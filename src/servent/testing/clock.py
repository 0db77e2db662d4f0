"""A virtual clock: time that moves only when the simulation says so.

Sans-IO cores take ``now`` as an argument; giving them this clock's value
instead of the wall clock makes a run of thousands of nodes deterministic and
lets a simulated hour pass in seconds.
"""

from __future__ import annotations


class VirtualClock:
    """Monotonic simulated time in seconds, advanced explicitly."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    @property
    def now(self) -> float:
        return self._now

    def __call__(self) -> float:
        """The current time, so the clock can stand in for ``time.monotonic``."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (never backwards); returns the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        return self._now

    def advance_to(self, when: float) -> float:
        """Move forward to ``when``; a time in the past leaves the clock where it is."""
        self._now = max(self._now, when)
        return self._now

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:.6f})"
