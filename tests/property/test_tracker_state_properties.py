"""The tracker registry's bookkeeping holds under any mix of announces and expiry."""

from __future__ import annotations

import contextlib
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.tracker import AnnounceRequest
from servent.errors import TrackerFailureError
from servent.proto.tracker_limits import address_group
from servent.proto.tracker_state import TrackerConfig, TrackerState

IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1", "2001:db8::2"]

steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("announce"),
            st.integers(0, 11),  # info-hash
            st.integers(0, 7),  # peer
            st.sampled_from(IPS),
            st.sampled_from(["", "started", "stopped", "completed"]),
            st.booleans(),  # seed
        ),
        st.tuples(st.just("expire")),
    ),
    max_size=120,
)


def check(state: TrackerState) -> None:
    swarms = state._swarms
    cfg = state.config
    assert len(swarms) <= cfg.max_torrents
    created = Counter(swarm.creator for swarm in swarms.values())
    for group, count in created.items():
        assert state._creators.count(group) == count <= cfg.max_swarms_per_ip
    heaviest = state._creators.heaviest()
    assert (heaviest[1] if heaviest else 0) == max(created.values(), default=0)
    for swarm in swarms.values():
        assert swarm.peers and len(swarm.peers) <= cfg.max_peers_per_torrent
        groups = Counter(address_group(p.addr[0]) for p in swarm.peers.values())
        assert swarm.groups == dict(groups)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_counts_stay_consistent_and_bounded(program: list[tuple[object, ...]]) -> None:
    config = TrackerConfig(
        interval=10,
        max_torrents=6,
        max_peers_per_torrent=4,
        max_swarms_per_ip=3,
        request_rate_per_ip=0,
    )
    state = TrackerState(config, rng=random.Random(0))
    now = 0.0
    for step in program:
        now += 3.0
        if step[0] == "expire":
            state.expire(now)
        else:
            _, ih, peer, ip, event, seed = step
            req = AnnounceRequest(
                info_hash=bytes([int(str(ih))]) * 20,
                peer_id=bytes([int(str(peer))]) * 20,
                port=1000,
                left=0 if seed else 1,
                event=str(event),
            )
            with contextlib.suppress(TrackerFailureError):
                state.announce(req, (str(ip), 1), now)
        check(state)
