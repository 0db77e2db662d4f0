"""Path MTU search for one uTP connection (see docs/utp.md, "Path MTU").

Sizes are UDP payload bytes (datagram sizes). The connection asks for the
size of ordinary packets (``size``) and whether to send a probe now
(``probe_size``), and reports what happened to probes and big packets. Time
is an argument; nothing here knows of sockets or sequence numbers beyond the
probe's.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "IP_OVERHEAD_IPV4",
    "IP_OVERHEAD_IPV6",
    "Limits",
    "PathMtu",
    "datagram_limits",
]

#: IP + UDP header bytes.
IP_OVERHEAD_IPV4 = 28
IP_OVERHEAD_IPV6 = 48
#: Path MTUs every host of the family accepts.
MIN_MTU_IPV4 = 576
MIN_MTU_IPV6 = 1280
#: No probe above Ethernet, whatever the interface says (loopback's 65,536 included).
MAX_MTU = 1500
#: Datagram sizes that pass nearly every path: where ordinary packets start.
ASSUMED_IPV4 = 1400
ASSUMED_IPV6 = 1232
#: Once floor and ceiling are this close, the ceiling itself is the last probe.
PRECISION = 16
#: After a finished search, how long until the ceiling is probed again.
RESEARCH_INTERVAL = 600.0
#: A packet above ``lowest`` lost to this many timeouts in a row means a black hole.
BLACK_HOLE_TRANSMISSIONS = 2


@dataclass(frozen=True, slots=True)
class Limits:
    """Datagram sizes: the smallest any path carries, the route's largest, the first guess."""

    lowest: int
    highest: int
    assumed: int
    overhead: int  # IP + UDP headers


def datagram_limits(ipv6: bool, route_mtu: int | None = None) -> Limits:
    """The search bounds for a path whose route MTU is ``route_mtu`` (None: Ethernet)."""
    overhead = IP_OVERHEAD_IPV6 if ipv6 else IP_OVERHEAD_IPV4
    lowest = (MIN_MTU_IPV6 if ipv6 else MIN_MTU_IPV4) - overhead
    mtu = MAX_MTU if route_mtu is None else min(route_mtu, MAX_MTU)
    highest = max(lowest, mtu - overhead)
    assumed = min(ASSUMED_IPV6 if ipv6 else ASSUMED_IPV4, highest)
    return Limits(lowest, highest, assumed, overhead)


class PathMtu:
    """Floor (proven), ceiling (not known to fail), the size in use and the probe in flight."""

    def __init__(self, limits: Limits, now: float, *, enabled: bool = True) -> None:
        self.limits = limits
        self.enabled = enabled
        self.floor = limits.lowest
        self.ceiling = limits.highest
        self.size = limits.assumed
        self.probe_seq: int | None = None
        self.probe_size = 0
        self.probes_sent = 0
        self.probes_lost = 0
        self.restarts = 0
        self._research_at: float | None = None
        if not enabled:  # fixed size, nothing to search
            self.floor = self.ceiling = self.size
        else:
            self._finish_if_done(now)

    @property
    def searching(self) -> bool:
        return self.enabled and self.floor < self.ceiling

    def next_probe(self, now: float) -> int:
        """The datagram size to probe now, or 0 (one probe at a time, once ``size`` is proven)."""
        if not self.enabled or self.probe_seq is not None:
            return 0
        if self._research_at is not None:
            if now < self._research_at:
                return 0
            self._research_at = None
            self.ceiling = self.limits.highest
        if self.size > self.floor or self.floor >= self.ceiling:
            return 0
        if self.ceiling - self.floor <= PRECISION:
            return self.ceiling
        return (self.floor + self.ceiling + 1) // 2

    def probe_sent(self, seq: int, size: int) -> None:
        self.probe_seq = seq
        self.probe_size = size
        self.probes_sent += 1

    def acked(self, size: int, now: float) -> None:
        """A datagram of ``size`` sent with DF was acknowledged: it fits the path."""
        self.probe_seq = None if size >= self.probe_size else self.probe_seq
        if size > self.floor:
            self.floor = size
            self.ceiling = max(self.ceiling, size)
            self.size = max(self.size, size)
        self._finish_if_done(now)

    def probe_lost(self, now: float) -> None:
        """The probe in flight was lost (or refused): the ceiling falls below it, no congestion."""
        if self.probe_seq is None:
            return
        self.probe_seq = None
        self.probes_lost += 1
        if self.probe_size - 1 < self.ceiling:
            close = self.ceiling - self.floor <= PRECISION
            self.ceiling = self.floor if close else max(self.floor, self.probe_size - 1)
        self._finish_if_done(now)

    def too_big(self, size: int, path_limit: int | None, now: float) -> None:
        """The kernel refused a datagram of ``size`` (EMSGSIZE); ``path_limit`` is its figure."""
        if not self.enabled:
            return
        limit = size - 1 if path_limit is None else min(size - 1, path_limit)
        limit = max(self.limits.lowest, limit)
        if self.probe_seq is not None and self.probe_size >= size:
            self.probe_seq = None
            self.probes_lost += 1
        self.ceiling = min(self.ceiling, limit)
        self.floor = min(self.floor, self.ceiling)
        self.size = min(self.size, self.ceiling)
        self._finish_if_done(now)

    def timed_out(self, size: int, transmissions: int, now: float) -> None:
        """The oldest packet (``size``, sent ``transmissions`` times) timed out."""
        if not self.enabled or size <= self.limits.lowest or size > self.size:
            return  # small enough for any path, or already known too big (resent fragmentable)
        unproven = self.size > self.floor
        if unproven or transmissions >= BLACK_HOLE_TRANSMISSIONS:
            self.restart(now)

    def restart(self, now: float) -> None:
        """Back to the smallest size; search the whole range again."""
        self.restarts += 1
        self.floor = self.size = self.limits.lowest
        self.ceiling = self.limits.highest
        self.probe_seq = None
        self._research_at = None
        self._finish_if_done(now)

    def _finish_if_done(self, now: float) -> None:
        if self.floor >= self.ceiling and self._research_at is None and self.enabled:
            self.size = self.floor
            if self.ceiling < self.limits.highest:
                self._research_at = now + RESEARCH_INTERVAL
