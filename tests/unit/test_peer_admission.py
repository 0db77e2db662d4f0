"""Admission of incoming peers: per-address cap, and replacing the least useful connection."""

from __future__ import annotations

from servent.proto.peer_admission import (
    Admission,
    AdmissionPolicy,
    PeerActivity,
    admit_peer,
    host_key,
    keeps_new_duplicate,
    least_useful_peer,
)

POLICY = AdmissionPolicy(max_peers=4, max_per_ip=2, idle_grace=10.0, interested_grace=100.0)


def peer(
    key: str,
    host: str = "10.0.0.1",
    *,
    connected_at: float = 0.0,
    last_payload: float | None = None,
    interested: bool = False,
    open: bool = True,
    incoming: bool = True,
) -> PeerActivity:
    return PeerActivity(key, host, incoming, open, connected_at, last_payload, interested)


def test_room_and_address_below_its_cap_is_accepted_without_eviction() -> None:
    peers = [peer("a", "10.0.0.1"), peer("b", "10.0.0.2")]
    assert admit_peer(peers, "10.0.0.1", 50.0, POLICY) == Admission(True)


def test_keepalive_only_flood_from_one_address_stops_at_the_cap() -> None:
    """Regression: 50 idle connections from one host filled a seeder's slots."""
    busy = [peer(f"x{n}", "10.9.9.9", connected_at=99.0) for n in range(2)]
    decision = admit_peer(busy, "10.9.9.9", 100.0, POLICY)
    assert not decision.accept
    assert "10.9.9.9" in decision.reason


def test_address_at_its_cap_may_only_replace_its_own_idle_connection() -> None:
    peers = [
        peer("other idle", "10.0.0.7", connected_at=0.0),
        peer("same busy", "10.0.0.1", connected_at=0.0, last_payload=99.0),
        peer("same idle", "10.0.0.1", connected_at=5.0),
    ]
    assert admit_peer(peers, "10.0.0.1", 100.0, POLICY) == Admission(True, evict="same idle")


def test_full_torrent_replaces_the_uninterested_longest_idle_peer() -> None:
    peers = [
        peer("interested, idle long", "10.0.0.1", interested=True, connected_at=0.0),
        peer("not interested, idle since 60", "10.0.0.2", last_payload=60.0),
        peer("not interested, idle since 20", "10.0.0.3", last_payload=20.0),
        peer("delivering", "10.0.0.4", last_payload=199.5, interested=True),
    ]
    decision = admit_peer(peers, "10.0.0.5", 200.0, POLICY)
    assert decision == Admission(True, evict="not interested, idle since 20")


def test_interested_idle_peer_is_replaced_only_after_the_longer_grace() -> None:
    peers = [
        peer(f"waiting {n}", f"10.0.0.{n}", interested=True, connected_at=float(n))
        for n in range(4)
    ]
    assert not admit_peer(peers, "10.0.1.1", 50.0, POLICY).accept
    assert admit_peer(peers, "10.0.1.1", 102.0, POLICY) == Admission(True, evict="waiting 0")


def test_fresh_connections_get_their_grace_before_being_replaced() -> None:
    peers = [peer(f"new {n}", f"10.0.0.{n}", connected_at=95.0) for n in range(4)]
    decision = admit_peer(peers, "10.0.1.1", 100.0, POLICY)
    assert not decision.accept
    assert decision.reason


def test_a_connection_still_dialling_is_never_evicted() -> None:
    peers = [peer(f"dial {n}", f"10.0.0.{n}", open=False) for n in range(4)]
    assert not admit_peer(peers, "10.0.1.1", 1000.0, POLICY).accept
    assert least_useful_peer(peers, 1000.0, POLICY) is None


def test_over_the_limit_after_it_was_lowered_refuses() -> None:
    peers = [peer(f"idle {n}", f"10.0.0.{n}") for n in range(6)]
    assert not admit_peer(peers, "10.0.1.1", 1000.0, POLICY).accept
    assert not admit_peer([], "10.0.1.1", 0.0, AdmissionPolicy(max_peers=0)).accept


def test_ties_fall_to_the_oldest_connection() -> None:
    peers = [peer("young", "10.0.0.1", connected_at=5.0, last_payload=20.0)]
    peers.append(peer("old", "10.0.0.2", connected_at=1.0, last_payload=20.0))
    assert least_useful_peer(peers, 100.0, POLICY) == "old"


def test_ipv4_mapped_ipv6_counts_as_the_ipv4_address() -> None:
    assert host_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert host_key("2001:DB8::1") == "2001:db8::1"
    assert host_key("not-an-ip") == "not-an-ip"
    peers = [peer("v4a", "10.0.0.1", last_payload=99.0), peer("v4b", "10.0.0.1", last_payload=99.0)]
    assert not admit_peer(peers, "::ffff:10.0.0.1", 100.0, POLICY).accept


def test_connections_we_dialled_do_not_count_against_the_address_cap() -> None:
    """Regression: a hub that dialled three seeders on 127.0.0.1 refused a newcomer there."""
    dialled = [peer(f"seed {n}", "127.0.0.1", last_payload=99.0, incoming=False) for n in range(3)]
    assert admit_peer(dialled, "127.0.0.1", 100.0, POLICY) == Admission(True)
    idle_dialled = [peer(f"d{n}", "10.0.0.1", incoming=False) for n in range(2)]
    incoming = [
        peer("busy in", "10.0.0.1", last_payload=99.0),
        peer("busy in 2", "10.0.0.1", last_payload=99.0),
    ]
    # at the cap, only an idle *incoming* connection of that address could make room
    assert not admit_peer(idle_dialled + incoming, "10.0.0.1", 100.0, POLICY).accept


def test_both_ends_keep_the_same_of_two_crossing_connections() -> None:
    """Two peers dialled each other at once: each end closes one connection, and it must
    be the same one (the one the greater peer id dialled), whichever handshake each end
    saw complete first."""
    low, high = b"-SV0000-" + b"a" * 12, b"-SV0000-" + b"z" * 12
    for outgoing_first_at_low in (True, False):
        for outgoing_first_at_high in (True, False):
            at_low = _dialler_of_kept(outgoing_first_at_low, our_id=low, their_id=high)
            at_high = _dialler_of_kept(outgoing_first_at_high, our_id=high, their_id=low)
            assert at_low == at_high == high


def _dialler_of_kept(outgoing_first: bool, *, our_id: bytes, their_id: bytes) -> bytes:
    """The peer id of whoever dialled the connection this end keeps."""
    new_outgoing = not outgoing_first
    keep_new = keeps_new_duplicate(
        new_outgoing=new_outgoing, old_outgoing=outgoing_first, our_id=our_id, their_id=their_id
    )
    outgoing_kept = new_outgoing if keep_new else outgoing_first
    return our_id if outgoing_kept else their_id


def test_two_connections_dialled_by_one_side_keep_the_older() -> None:
    ids = {"our_id": b"b" * 20, "their_id": b"a" * 20}
    assert not keeps_new_duplicate(new_outgoing=True, old_outgoing=True, **ids)
    assert not keeps_new_duplicate(new_outgoing=False, old_outgoing=False, **ids)


def test_of_two_connections_dialled_by_one_side_a_punch_keeps_the_utp_one() -> None:
    """A punch's uTP dial and its TCP simultaneous open may complete in either order at
    either end; both ends keep the uTP connection."""
    for our_id, their_id in ((b"b" * 20, b"a" * 20), (b"a" * 20, b"b" * 20)):
        ids = {"our_id": our_id, "their_id": their_id}
        for outgoing in (True, False):
            same = {"new_outgoing": outgoing, "old_outgoing": outgoing, **ids}
            assert keeps_new_duplicate(new_utp=True, old_utp=False, **same)
            assert not keeps_new_duplicate(new_utp=False, old_utp=True, **same)
            assert not keeps_new_duplicate(new_utp=True, old_utp=True, **same)


def test_at_the_node_wide_limit_a_newcomer_only_replaces_an_idle_connection() -> None:
    """The torrent has room, but the node's connections are all taken."""
    peers = [peer("idle", "10.0.0.1"), peer("busy", "10.0.0.2", last_payload=99.0)]
    assert admit_peer(peers, "10.0.1.1", 100.0, POLICY) == Admission(True)
    decision = admit_peer(peers, "10.0.1.1", 100.0, POLICY, node_full=True)
    assert decision == Admission(True, evict="idle")
    refused = admit_peer(peers[1:], "10.0.1.1", 100.0, POLICY, node_full=True)
    assert not refused.accept and "node" in refused.reason
    assert not admit_peer([], "10.0.1.1", 100.0, POLICY, node_full=True).accept
