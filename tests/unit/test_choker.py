"""Choker: tit-for-tat with optimistic unchoke when leeching, round robin when seeding."""

from __future__ import annotations

import random
from collections import Counter

from servent.proto.choker import Choker, ChokerConfig, PeerStats


def leecher_peers(count: int, *, connected_at: float = -1000.0) -> list[PeerStats]:
    return [
        PeerStats(f"p{i}", interested=True, download_rate=1000.0 * i, connected_at=connected_at)
        for i in range(count)
    ]


def test_best_uploaders_to_us_get_the_regular_slots() -> None:
    choker = Choker(rng=random.Random(1), config=ChokerConfig(upload_slots=4))
    decision = choker.run(leecher_peers(10), 0.0, seeding=False)
    assert len(decision.unchoke) == 4
    assert {"p9", "p8", "p7"} <= decision.unchoke
    assert len(decision.optimistic) == 1
    assert decision.optimistic <= {f"p{i}" for i in range(7)}


def test_uninterested_and_snubbed_peers_do_not_take_regular_slots() -> None:
    choker = Choker(rng=random.Random(1), config=ChokerConfig(upload_slots=2, optimistic_slots=0))
    peers = [
        PeerStats("fast-but-snubbed", True, download_rate=1e9, snubbed=True),
        PeerStats("not-interested", False, download_rate=1e8),
        PeerStats("a", True, download_rate=10.0),
        PeerStats("b", True, download_rate=20.0),
    ]
    assert choker.run(peers, 0.0, seeding=False).unchoke == {"a", "b"}


def test_optimistic_slot_is_kept_for_its_interval_then_rotates() -> None:
    choker = Choker(rng=random.Random(3), config=ChokerConfig(upload_slots=2))
    peers = leecher_peers(8)
    first = choker.run(peers, 0.0, seeding=False).optimistic
    assert choker.next_timer() == 10.0
    assert choker.run(peers, 10.0, seeding=False).optimistic == first
    assert choker.run(peers, 20.0, seeding=False).optimistic == first
    seen = {first}
    for step in range(3, 30):
        seen.add(choker.run(peers, step * 10.0, seeding=False).optimistic)
    assert len(seen) > 2


def test_new_peers_are_three_times_as_likely_to_be_optimistic() -> None:
    counts: Counter[str] = Counter()
    for seed in range(600):
        choker = Choker(rng=random.Random(seed), config=ChokerConfig(upload_slots=1))
        peers = [
            PeerStats("old", True, connected_at=-1000.0),
            PeerStats("new", True, connected_at=-5.0),
        ]
        (chosen,) = choker.run(peers, 0.0, seeding=False).optimistic
        counts[str(chosen)] += 1
    assert 2.0 < counts["new"] / counts["old"] < 4.5


def test_departed_optimistic_peer_is_replaced() -> None:
    choker = Choker(rng=random.Random(1), config=ChokerConfig(upload_slots=1))
    peers = leecher_peers(3)
    (first,) = choker.run(peers, 0.0, seeding=False).optimistic
    remaining = [p for p in peers if p.peer != first]
    (second,) = choker.run(remaining, 10.0, seeding=False).optimistic
    assert second != first


def test_seeding_round_robin_gives_every_interested_peer_a_turn() -> None:
    config = ChokerConfig(upload_slots=2, seed_slot_time=30.0, seed_quota_bytes=10**12)
    choker = Choker(rng=random.Random(1), config=config)
    peers = [PeerStats(f"p{i}", True) for i in range(6)]
    turns: Counter[str] = Counter()
    for step in range(30):
        decision = choker.run(peers, step * 10.0, seeding=True)
        assert len(decision.unchoke) == 2 and not decision.optimistic
        turns.update(str(p) for p in decision.unchoke)
    assert set(turns) == {f"p{i}" for i in range(6)}
    assert max(turns.values()) - min(turns.values()) <= 3


def test_seeding_rotates_a_peer_after_its_byte_quota() -> None:
    config = ChokerConfig(upload_slots=1, seed_quota_bytes=1000, seed_slot_time=1e9)
    choker = Choker(rng=random.Random(1), config=config)
    a, b = PeerStats("a", True, uploaded=0), PeerStats("b", True, uploaded=0)
    (holder,) = choker.run([a, b], 0.0, seeding=True).unchoke
    assert choker.run([a, b], 10.0, seeding=True).unchoke == {holder}
    served = [PeerStats(p.peer, True, uploaded=5000 if p.peer == holder else 0) for p in (a, b)]
    (after,) = choker.run(served, 20.0, seeding=True).unchoke
    assert after != holder


def test_seeding_keeps_holders_when_nobody_waits() -> None:
    config = ChokerConfig(upload_slots=3, seed_slot_time=5.0)
    choker = Choker(rng=random.Random(1), config=config)
    peers = [PeerStats("a", True), PeerStats("b", True)]
    assert choker.run(peers, 0.0, seeding=True).unchoke == {"a", "b"}
    assert choker.run(peers, 100.0, seeding=True).unchoke == {"a", "b"}


def test_same_seed_same_decisions() -> None:
    def decisions(seed: int) -> list[frozenset[object]]:
        choker = Choker(rng=random.Random(seed))
        peers = leecher_peers(12)
        return [choker.run(peers, t * 10.0, seeding=False).unchoke for t in range(20)]

    assert decisions(7) == decisions(7)


def test_unlimited_slots_unchoke_every_interested_peer() -> None:
    choker = Choker(rng=random.Random(1), config=ChokerConfig(upload_slots=None))
    peers = [*leecher_peers(6), PeerStats("bored", interested=False)]
    for seeding in (False, True):
        decision = choker.run(peers, 0.0, seeding=seeding)
        assert decision.unchoke == {f"p{i}" for i in range(6)}


def test_zero_slots_unchoke_nobody() -> None:
    choker = Choker(rng=random.Random(1), config=ChokerConfig(upload_slots=0))
    assert choker.run(leecher_peers(3), 0.0, seeding=False).unchoke == frozenset()
    assert choker.run(leecher_peers(3), 10.0, seeding=True).unchoke == frozenset()
