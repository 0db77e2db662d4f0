"""Round-trip times of a DHT node's queries, smoothed as TCP does (RFC 6298).

A fixed timeout is wrong twice: far too long for the typical answer (about
100 ms), so a lookup waits seconds on every vanished node, and too short for
a node on a slow link, so its answer is thrown away. The node instead keeps
SRTT and RTTVAR over every answer it gets and waits ``SRTT + 4 * RTTVAR``
(clamped) before it calls a query *slow*: the slot is freed and the lookup
moves on, while the query itself stays open until the hard timeout, so a late
answer is still used. Routing-table entries keep their own smoothed RTT.
"""

from __future__ import annotations

#: Gains of RFC 6298 (alpha = 1/8 for SRTT, beta = 1/4 for RTTVAR).
SRTT_GAIN = 0.125
RTTVAR_GAIN = 0.25
#: RTTVAR multiplier of RFC 6298 ("K").
VARIANCE_WEIGHT = 4.0


class RoundTripEstimator:
    """SRTT and RTTVAR over every answered query of one node."""

    __slots__ = ("rttvar", "samples", "srtt")

    def __init__(self) -> None:
        self.srtt = 0.0
        self.rttvar = 0.0
        self.samples = 0

    def observe(self, sample: float) -> None:
        """Account for one round trip (seconds); negative values are ignored."""
        if sample < 0.0:
            return
        if self.samples == 0:
            self.srtt = sample
            self.rttvar = sample / 2
        else:
            self.rttvar += RTTVAR_GAIN * (abs(self.srtt - sample) - self.rttvar)
            self.srtt += SRTT_GAIN * (sample - self.srtt)
        self.samples += 1

    def timeout(self, initial: float, floor: float, ceiling: float) -> float:
        """How long to wait for an answer: ``initial`` before any sample, else the RTO."""
        if self.samples == 0:
            return initial
        rto = self.srtt + VARIANCE_WEIGHT * self.rttvar
        return min(max(rto, floor), ceiling)

    def late_after(self, initial: float, floor: float) -> float:
        """When an answer is later than most (``SRTT + RTTVAR``): time to ask another."""
        if self.samples == 0:
            return initial
        return max(self.srtt + self.rttvar, floor)


def smoothed(previous: float, sample: float) -> float:
    """One node's smoothed RTT after ``sample`` (``previous`` 0.0: none yet)."""
    if previous <= 0.0:
        return sample
    return previous + SRTT_GAIN * (sample - previous)
