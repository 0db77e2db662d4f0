"""Round-trip time and retransmission timeout, computed as TCP does (RFC 6298)."""

from __future__ import annotations

__all__ = ["RttEstimator"]

INITIAL_RTO = 1.0
MIN_RTO = 0.5
MAX_RTO = 60.0


class RttEstimator:
    """``srtt``/``rttvar`` from samples of packets sent once; ``rto`` doubles on expiry."""

    def __init__(self) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = INITIAL_RTO
        self.latest = 0.0

    def sample(self, rtt: float) -> None:
        rtt = max(rtt, 0.0)
        self.latest = rtt
        if self.srtt is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)
            self.srtt = 0.875 * self.srtt + 0.125 * rtt
        self.rto = min(MAX_RTO, max(MIN_RTO, self.srtt + 4 * self.rttvar))

    def back_off(self) -> None:
        self.rto = min(MAX_RTO, self.rto * 2)
