"""A snapshot of one uTP connection's figures, for status pages, tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from servent.proto.utp.ledbat import Ledbat
from servent.proto.utp.mtu import PathMtu
from servent.proto.utp.rtt import RttEstimator

__all__ = ["UtpStatistics", "statistics_of"]


class Measured(Protocol):
    """What a snapshot reads from a connection (no import of it: no cycle)."""

    mtu: PathMtu
    ledbat: Ledbat
    rtt: RttEstimator
    packets_sent: int
    packets_resent: int
    packets_dropped: int


@dataclass(frozen=True, slots=True)
class UtpStatistics:
    """Sizes are datagram sizes (UDP payload) except ``path_mtu``, which adds IP and UDP."""

    path_mtu: int
    datagram_size: int
    mtu_floor: int
    mtu_ceiling: int
    mtu_searching: bool
    mtu_probes_sent: int
    mtu_probes_lost: int
    mtu_restarts: int
    packets_sent: int
    packets_resent: int
    packets_dropped: int
    window: int
    srtt: float | None


def statistics_of(conn: Measured) -> UtpStatistics:
    mtu = conn.mtu
    return UtpStatistics(
        path_mtu=mtu.size + mtu.limits.overhead,
        datagram_size=mtu.size,
        mtu_floor=mtu.floor,
        mtu_ceiling=mtu.ceiling,
        mtu_searching=mtu.searching,
        mtu_probes_sent=mtu.probes_sent,
        mtu_probes_lost=mtu.probes_lost,
        mtu_restarts=mtu.restarts,
        packets_sent=conn.packets_sent,
        packets_resent=conn.packets_resent,
        packets_dropped=conn.packets_dropped,
        window=int(conn.ledbat.window),
        srtt=conn.rtt.srtt,
    )
