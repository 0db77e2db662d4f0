"""Path MTU search (docs/utp.md, "Path MTU"): the pure search, then whole connections
over simulated paths with a smaller MTU, with and without ICMP (no sockets)."""

from __future__ import annotations

import random

from servent.proto.utp.mtu import (
    PRECISION,
    RESEARCH_INTERVAL,
    Limits,
    PathMtu,
    datagram_limits,
)
from servent.testing.utp_link import LinkDirection, UtpLink, client_and_server

ETHERNET_V4 = datagram_limits(False)


def _transfer(link: UtpLink, size: int, timeout: float = 600) -> bytes:
    data = random.Random(size).randbytes(size)
    assert link.run_until(lambda: link.server is not None, 10)
    assert link.server is not None
    link.server.send(data)  # the server sends: it is the side whose MTU is checked
    link.server.close()
    done = link.run_until(lambda: len(link.received["client"]) >= size, timeout)
    assert done, (len(link.received["client"]), link.now)
    return data


# ------------------------------------------------------------ the search alone


def test_limits_follow_the_route_and_stop_at_ethernet() -> None:
    assert datagram_limits(False) == Limits(548, 1472, 1400, 28)
    assert datagram_limits(True) == Limits(1232, 1452, 1232, 48)
    assert datagram_limits(False, 65536).highest == 1472  # loopback: no probe above Ethernet
    assert datagram_limits(False, 1280) == Limits(548, 1252, 1252, 28)
    assert datagram_limits(True, 1280).highest == 1232


def test_bisection_converges_on_the_largest_size_that_passes() -> None:
    mtu = PathMtu(ETHERNET_V4, 0.0)
    assert mtu.next_probe(0.0) == 0  # the assumed 1,400 is not proven yet
    mtu.acked(1400, 0.0)
    path = 1450
    seq = 0
    while (probe := mtu.next_probe(1.0)) != 0:
        seq += 1
        mtu.probe_sent(seq, probe)
        if probe <= path:
            mtu.acked(probe, 1.0)
        else:
            mtu.probe_lost(1.0)
        assert seq < 20
    assert not mtu.searching
    assert path - PRECISION <= mtu.size <= path
    assert mtu.probes_lost >= 1


def test_a_refused_datagram_takes_the_kernels_figure() -> None:
    mtu = PathMtu(ETHERNET_V4, 0.0)
    mtu.too_big(1400, 1252, 0.0)
    assert (mtu.ceiling, mtu.size) == (1252, 1252)
    mtu.acked(1252, 0.0)
    assert (mtu.floor, mtu.searching) == (1252, False)


def test_an_unproven_size_that_times_out_restarts_from_the_bottom() -> None:
    mtu = PathMtu(ETHERNET_V4, 0.0)
    mtu.timed_out(1400, 1, 0.0)
    assert (mtu.size, mtu.floor, mtu.restarts) == (548, 548, 1)
    mtu.timed_out(1400, 2, 0.0)  # already smaller: that packet is resent fragmentable
    assert mtu.restarts == 1
    mtu.timed_out(548, 5, 0.0)  # the smallest size is never blamed on the MTU
    assert mtu.restarts == 1


def test_a_proven_size_lost_twice_in_a_row_restarts_the_search() -> None:
    mtu = PathMtu(ETHERNET_V4, 0.0)
    mtu.acked(1400, 0.0)
    mtu.timed_out(1400, 1, 0.0)  # one timeout: congestion is as likely
    assert mtu.size == 1400
    mtu.timed_out(1400, 2, 0.0)
    assert (mtu.size, mtu.ceiling, mtu.restarts) == (548, 1472, 1)


def test_a_finished_search_probes_the_ceiling_again_after_ten_minutes() -> None:
    mtu = PathMtu(ETHERNET_V4, 0.0)
    mtu.too_big(1400, 1252, 0.0)
    mtu.acked(1252, 0.0)
    assert mtu.next_probe(RESEARCH_INTERVAL - 1) == 0
    probe = mtu.next_probe(RESEARCH_INTERVAL + 1)
    assert 1252 < probe <= 1472


def test_disabled_search_keeps_the_fixed_size() -> None:
    mtu = PathMtu(ETHERNET_V4, 0.0, enabled=False)
    mtu.too_big(1400, 600, 0.0)
    mtu.timed_out(1400, 5, 0.0)
    assert (mtu.size, mtu.next_probe(0.0)) == (1400, 0)


# ------------------------------------------------------------ whole connections


def test_clean_path_climbs_to_the_ceiling() -> None:
    link = client_and_server(mtu=ETHERNET_V4, seed=1)
    data = _transfer(link, 2 << 20)
    assert bytes(link.received["client"]) == data
    assert link.server is not None
    stats = link.server.statistics()
    assert (stats.datagram_size, stats.path_mtu, stats.mtu_searching) == (1472, 1500, False)
    assert stats.mtu_probes_lost == 0


def test_smaller_path_with_icmp_settles_on_it_exactly() -> None:
    backward = LinkDirection(mtu=1252, icmp=True)  # server -> client: a 1,280-byte link
    link = client_and_server(mtu=ETHERNET_V4, backward=backward, seed=2)
    data = _transfer(link, 2 << 20)
    assert bytes(link.received["client"]) == data
    assert link.server is not None
    assert link.server.statistics().datagram_size == 1252
    assert backward.too_big >= 1


def test_black_hole_path_completes_and_settles_below_it() -> None:
    backward = LinkDirection(mtu=1252, icmp=False)  # oversize datagrams vanish silently
    link = client_and_server(mtu=ETHERNET_V4, backward=backward, seed=3)
    data = _transfer(link, 2 << 20)
    assert bytes(link.received["client"]) == data
    assert link.server is not None
    stats = link.server.statistics()
    assert 1252 - PRECISION <= stats.datagram_size <= 1252
    assert stats.mtu_restarts >= 1  # the first 1,400-byte packets were never acknowledged


def test_lost_probes_do_not_halve_the_window() -> None:
    limits = Limits(548, 1472, 1000, 28)  # starts below the path: only probes are lost
    backward = LinkDirection(mtu=1300, icmp=False)
    link = client_and_server(mtu=limits, backward=backward, seed=4)
    data = _transfer(link, 2 << 20)
    assert bytes(link.received["client"]) == data
    assert link.server is not None
    stats = link.server.statistics()
    assert stats.mtu_probes_lost >= 1
    assert link.server.ledbat.slow_start  # a loss counted as congestion would end slow start
    assert 1300 - PRECISION <= stats.datagram_size <= 1300


def test_a_path_that_shrinks_midway_is_found_again() -> None:
    backward = LinkDirection()
    link = client_and_server(mtu=ETHERNET_V4, backward=backward, seed=5)
    assert link.run_until(lambda: link.server is not None, 10)
    assert link.server is not None
    server = link.server
    first = random.Random(1).randbytes(1 << 20)
    server.send(first)
    assert link.run_until(lambda: len(link.received["client"]) >= len(first), 300)
    assert server.statistics().datagram_size == 1472
    backward.mtu, backward.icmp = 1200, False  # a new route, and ICMP filtered
    second = random.Random(2).randbytes(4 << 20)  # the first MiB of it is in flight at 1,472
    server.send(second)
    server.close()
    total = len(first) + len(second)
    assert link.run_until(lambda: len(link.received["client"]) >= total, 600)
    assert bytes(link.received["client"]) == first + second
    stats = server.statistics()
    assert stats.mtu_restarts >= 1
    assert 1200 - PRECISION <= stats.datagram_size <= 1200
