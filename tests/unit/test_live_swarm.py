"""The live scheduler alone, and 20 viewers of one capped broadcaster in simulation."""

from __future__ import annotations

import statistics

from servent.proto.live import LiveWindow
from servent.proto.live_swarm import LiveScheduler
from servent.testing.live_network import LiveSimConfig, simulate


def test_a_joining_viewer_starts_at_the_edge_then_fills_its_window_oldest_first() -> None:
    scheduler = LiveScheduler(LiveWindow(4), max_outstanding=2)
    scheduler.add_peer("a")
    scheduler.add_peer("b")
    for index in range(10):
        scheduler.peer_has("a", index)
    scheduler.peer_has("b", 9)
    first = scheduler.next_requests(0.0, busy=lambda peer: 0 if peer == "b" else 1)
    assert first == [("b", 9)]  # the live edge, from the less busy holder
    assert scheduler.piece_received(9) == []
    assert scheduler.next_requests(0.1, busy=lambda peer: 0) == []  # nothing before the edge
    scheduler.peer_has("a", 10)
    scheduler.peer_has("a", 11)
    assert scheduler.next_requests(0.2, busy=lambda peer: 0) == [("a", 10), ("a", 11)]
    scheduler.piece_received(11)
    scheduler.peer_has("a", 12)
    assert scheduler.next_requests(0.3, busy=lambda peer: 0) == [("a", 12)]
    # A request nobody answers is asked again after the timeout, or after a refusal.
    assert scheduler.next_requests(0.4, busy=lambda peer: 0) == []
    assert ("a", 10) in scheduler.next_requests(5.0, busy=lambda peer: 0)
    scheduler.request_refused("a", 12)
    assert scheduler.next_requests(5.1, busy=lambda peer: 0) == [("a", 12)]


def test_twenty_viewers_get_every_piece_within_ten_seconds_of_it_being_written() -> None:
    config = LiveSimConfig()
    result = simulate(config)
    late = config.viewers
    for viewer in range(1, config.viewers + 1):
        start = result.first_piece_of[viewer]
        if viewer != late:
            assert start == 0
        for index in range(start, config.pieces):
            assert result.latency[(viewer, index)] <= 10.0, (viewer, index)
    # The late viewer starts at the live edge, not at the first piece.
    assert result.first_piece_of[late] >= config.late_viewer_joins - 2
    # The broadcaster's upload never exceeds 3x the bitrate (its link is capped there)
    # and most pieces reach viewers through other viewers.
    assert result.broadcaster_uploads <= 3 * config.pieces
    assert result.broadcaster_uploads < len(result.latency) / 4
    assert statistics.median(result.latency.values()) < 5.0


def test_a_piece_a_peer_will_not_send_is_asked_of_another_holder() -> None:
    scheduler = LiveScheduler(LiveWindow(8), max_outstanding=4)
    for peer in ("broadcaster", "viewer"):
        scheduler.add_peer(peer)
    scheduler.peer_has("broadcaster", 5)
    assert scheduler.next_requests(0.0, busy=scheduler.outstanding_to) == [("broadcaster", 5)]
    assert scheduler.outstanding_to("broadcaster") == 1
    # The broadcaster sent its copies already: "gone" means never ask it for piece 5 again.
    scheduler.request_refused("broadcaster", 5, gone=True)
    assert scheduler.outstanding_to("broadcaster") == 0
    assert scheduler.next_requests(0.1, busy=scheduler.outstanding_to) == []
    scheduler.peer_has("viewer", 5)
    assert scheduler.next_requests(0.2, busy=scheduler.outstanding_to) == [("viewer", 5)]
    assert scheduler.start == 5
