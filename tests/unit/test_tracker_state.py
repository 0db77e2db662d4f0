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
