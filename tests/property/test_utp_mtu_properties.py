"""Path MTU search invariants under any order of events, and streams over paths of any
MTU, with or without ICMP, with loss (hypothesis; simulated path, no sockets)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.proto.utp.mtu import PathMtu, datagram_limits
from servent.testing.utp_link import LinkDirection, client_and_server

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["probe", "acked", "lost", "too_big", "timed_out", "restart"]),
        st.integers(min_value=0, max_value=2000),
        st.integers(min_value=1, max_value=4),
    ),
    max_size=60,
)


@given(
    ipv6=st.booleans(),
    route=st.none() | st.integers(min_value=600, max_value=70_000),
    events=EVENTS,
)
def test_search_state_stays_ordered(
    ipv6: bool, route: int | None, events: list[tuple[str, int, int]]
) -> None:
    limits = datagram_limits(ipv6, route)
    mtu = PathMtu(limits, 0.0)
    now = 0.0
    for kind, size, count in events:
        now += 61.0 * count
        if kind == "probe" and (probe := mtu.next_probe(now)):
            assert mtu.floor < probe <= mtu.ceiling
            mtu.probe_sent(count, probe)
        elif kind == "acked" and limits.lowest <= size <= mtu.ceiling:
            mtu.acked(size, now)  # only sizes that can have been sent
        elif kind == "lost":
            mtu.probe_lost(now)
        elif kind == "too_big" and size > limits.lowest:
            mtu.too_big(size, size - count, now)
        elif kind == "timed_out":
            mtu.timed_out(size, count, now)
        elif kind == "restart":
            mtu.restart(now)
        assert limits.lowest <= mtu.floor <= mtu.size <= mtu.ceiling <= limits.highest


@settings(max_examples=25, deadline=None)
@given(
    path=st.integers(min_value=600, max_value=1500),
    icmp=st.booleans(),
    loss=st.sampled_from([0.0, 0.01, 0.03]),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_stream_arrives_whole_over_any_path_mtu(
    path: int, icmp: bool, loss: float, seed: int
) -> None:
    backward = LinkDirection(mtu=path - 28, icmp=icmp, loss=loss)
    link = client_and_server(
        mtu=datagram_limits(False), backward=backward, forward=LinkDirection(loss=loss), seed=seed
    )
    assert link.run_until(lambda: link.server is not None, 30)
    assert link.server is not None
    data = random.Random(seed).randbytes(300_000)
    link.server.send(data)
    assert link.run_until(lambda: len(link.received["client"]) >= len(data), 1800)
    assert bytes(link.received["client"]) == data
    assert link.server.mtu.size <= max(path - 28, 548)
