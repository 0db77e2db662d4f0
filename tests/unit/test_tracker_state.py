"""The built-in tracker's registry: peer lists, bounds, expiry."""

from __future__ import annotations

import random

import pytest

from servent.codec.tracker import AnnounceRequest
from servent.errors import TrackerFailureError
from servent.proto.tracker_state import TrackerConfig, TrackerState

IH = b"i" * 20


def req(n: int, *, left: int = 1, event: str = "", info_hash: bytes = IH) -> AnnounceRequest:
    return AnnounceRequest(
        info_hash=info_hash, peer_id=n.to_bytes(20, "big"), port=1000 + n, left=left, event=event
    )


def make(**kw: int | float) -> TrackerState:
    return TrackerState(TrackerConfig(**kw), rng=random.Random(1))  # type: ignore[arg-type]


def test_second_peer_sees_the_first_with_its_observed_ip() -> None:
    state = make()
    assert state.announce(req(1, event="started"), ("10.0.0.1", 5), 0).peers == ()
    resp = state.announce(req(2), ("10.0.0.2", 6), 1)
    assert resp.peers == (("10.0.0.1", 1001),)
    assert (resp.complete, resp.incomplete) == (0, 2)


def test_seeds_are_not_sent_to_seeds() -> None:
    state = make()
    state.announce(req(1, left=0), ("10.0.0.1", 5), 0)
    state.announce(req(3), ("10.0.0.3", 5), 0)
    assert state.announce(req(2, left=0), ("10.0.0.2", 5), 0).peers == (("10.0.0.3", 1003),)


def test_stopped_removes_the_peer_and_empty_swarm() -> None:
    state = make()
    state.announce(req(1), ("10.0.0.1", 5), 0)
    state.announce(req(1, event="stopped"), ("10.0.0.1", 5), 1)
    assert len(state) == 0


def test_completed_counts_downloads_in_scrape() -> None:
    state = make()
    state.announce(req(1, left=0, event="completed"), ("10.0.0.1", 5), 0)
    entry = state.scrape(IH)
    assert (entry.complete, entry.downloaded, entry.incomplete) == (1, 1, 0)


def test_peers_expire_after_the_interval_multiple() -> None:
    state = make(interval=100, expiry_factor=2.0)
    state.announce(req(1), ("10.0.0.1", 5), 0)
    state.announce(req(2), ("10.0.0.2", 5), 150)
    assert state.next_timer() == 200
    state.handle_timer(201)
    assert state.peer_count(IH) == 1
    state.expire(351)
    assert len(state) == 0 and state.next_timer() is None


def test_peer_flood_is_capped_and_evicts_the_stalest() -> None:
    state = make(max_peers_per_torrent=10)
    for n in range(100):
        state.announce(req(n), ("10.0.0.1", 5), float(n))
    assert state.peer_count(IH) == 10
    peers = state.announce(req(500), ("10.0.0.9", 5), 300).peers
    assert {p[1] for p in peers} <= {1000 + n for n in range(90, 100)}


def test_torrent_cap_answers_failure() -> None:
    state = make(max_torrents=2)
    for n in range(2):
        state.announce(req(n, info_hash=bytes([n]) * 20), ("10.0.0.1", 5), 0)
    with pytest.raises(TrackerFailureError, match="full"):
        state.announce(req(9, info_hash=b"\x09" * 20), ("10.0.0.1", 5), 0)


def test_numwant_is_bounded() -> None:
    state = make(max_numwant=5)
    for n in range(20):
        state.announce(req(n), ("10.0.0.1", 5), 0)
    assert len(state.announce(req(99), ("10.0.0.1", 5), 0).peers) == 5


def hash_of(n: int) -> bytes:
    return n.to_bytes(20, "big")


def test_one_client_cannot_create_more_than_its_share_of_swarms() -> None:
    state = make(max_swarms_per_ip=5, request_rate_per_ip=0)
    for n in range(5):
        state.announce(req(n, info_hash=hash_of(n)), ("10.0.0.1", 5), 0)
    with pytest.raises(TrackerFailureError, match="already has 5 torrents"):
        state.announce(req(9, info_hash=hash_of(9)), ("10.0.0.1", 5), 0)
    assert state.swarms_created_by("10.0.0.1") == 5
    state.announce(req(9, info_hash=hash_of(9)), ("10.0.0.2", 5), 0)  # others still can
    state.announce(req(0, event="stopped", info_hash=hash_of(0)), ("10.0.0.1", 5), 1)
    state.announce(req(9, info_hash=hash_of(10)), ("10.0.0.1", 5), 1)  # a slot came back


def test_an_ipv6_slash_64_counts_as_one_client() -> None:
    state = make(max_swarms_per_ip=2, request_rate_per_ip=0)
    state.announce(req(1, info_hash=hash_of(1)), ("2001:db8::1", 5), 0)
    state.announce(req(2, info_hash=hash_of(2)), ("2001:db8::2", 5), 0)
    with pytest.raises(TrackerFailureError, match="already has"):
        state.announce(req(3, info_hash=hash_of(3)), ("2001:db8::ffff:3", 5), 0)
    state.announce(req(3, info_hash=hash_of(3)), ("2001:db8:0:1::3", 5), 0)


def test_requests_beyond_the_rate_are_refused_then_allowed_again() -> None:
    state = make(request_rate_per_ip=2, request_burst_per_ip=3)
    for n in range(3):
        state.announce(req(n), ("10.0.0.1", 5), 0)
    with pytest.raises(TrackerFailureError, match="too many requests"):
        state.announce(req(9), ("10.0.0.1", 5), 0)
    with pytest.raises(TrackerFailureError, match="too many requests"):
        state.scrape_from([IH], ("10.0.0.1", 5), 0)
    assert state.scrape_from([IH, IH], ("10.0.0.2", 5), 0)[1].incomplete == 3
    state.announce(req(9), ("10.0.0.1", 5), 0.5)  # one token back after half a second


def test_a_full_table_evicts_the_heaviest_clients_stalest_single_address_swarm() -> None:
    state = make(max_torrents=6, request_rate_per_ip=0)
    for n in range(4):  # the heavy client: four swarms
        state.announce(req(n, info_hash=hash_of(n)), ("10.0.0.1", 5), float(n))
    state.announce(req(4, info_hash=hash_of(4)), ("10.0.0.2", 5), 0)  # a light one
    state.announce(req(5, info_hash=hash_of(5)), ("10.0.0.3", 5), 0)
    state.announce(req(0, info_hash=hash_of(0)), ("10.0.0.1", 5), 10)  # hash 0 is fresh again
    state.announce(req(7, info_hash=hash_of(7)), ("10.0.0.4", 5), 11)
    assert state.peer_count(hash_of(1)) == 0  # heavy client's least recently announced
    assert all(state.peer_count(hash_of(n)) == 1 for n in (0, 2, 3, 4, 5, 7))


def test_a_swarm_used_from_several_addresses_is_never_evicted() -> None:
    state = make(max_torrents=2, request_rate_per_ip=0)
    state.announce(req(1, info_hash=hash_of(1)), ("10.0.0.1", 5), 0)
    state.announce(req(2, info_hash=hash_of(1)), ("10.0.0.2", 5), 0)  # two addresses
    state.announce(req(3, info_hash=hash_of(2)), ("10.0.0.1", 5), 1)  # one address
    state.announce(req(4, info_hash=hash_of(3)), ("10.0.0.9", 5), 2)
    assert state.peer_count(hash_of(1)) == 2 and state.peer_count(hash_of(2)) == 0
    with pytest.raises(TrackerFailureError, match="full"):  # only busy swarms are left
        state.announce(req(5, info_hash=hash_of(4)), ("10.0.0.8", 5), 3)
    assert state.peer_count(hash_of(3)) == 1


def test_the_heaviest_client_cannot_evict_others_to_make_room_for_itself() -> None:
    state = make(max_torrents=4, request_rate_per_ip=0)
    for n in range(3):
        state.announce(req(n, info_hash=hash_of(n)), ("10.0.0.1", 5), 0)
    state.announce(req(3, info_hash=hash_of(3)), ("10.0.0.2", 5), 0)
    with pytest.raises(TrackerFailureError, match="full"):
        state.announce(req(4, info_hash=hash_of(4)), ("10.0.0.1", 5), 1)
    assert state.peer_count(hash_of(3)) == 1 and len(state) == 4


def test_expiry_frees_the_creators_share_and_forgets_empty_swarms() -> None:
    state = make(interval=10, max_swarms_per_ip=2, request_rate_per_ip=0)
    state.announce(req(1, info_hash=hash_of(1)), ("10.0.0.1", 5), 0)
    state.announce(req(2, info_hash=hash_of(2)), ("10.0.0.1", 5), 15)
    state.expire(21)  # the first peer was silent for two intervals
    assert len(state) == 1 and state.swarms_created_by("10.0.0.1") == 1
    state.announce(req(3, info_hash=hash_of(3)), ("10.0.0.1", 5), 21)
    assert state.swarms_created_by("10.0.0.1") == 2


def test_a_full_swarm_takes_room_from_the_client_with_the_most_peers_in_it() -> None:
    state = make(max_peers_per_torrent=10, request_rate_per_ip=0)
    state.announce(req(1000), ("10.0.0.5", 5), 0)  # a real peer, announced first
    for n in range(50):  # one address floods the swarm with fresh fake peers
        state.announce(req(n), ("10.0.0.1", 5), float(n + 1))
    assert state.peer_count(IH) == 10
    peers = state.announce(req(2000, left=0), ("10.0.0.9", 5), 100).peers
    assert ("10.0.0.5", 2000) in peers  # the real peer survived the flood
