"""The connection manager's pure parts: candidate scores, ranking, idle-peer choice,
and the known-peer list that dials in score order."""

from __future__ import annotations

from servent.net.known_peers import KnownPeers
from servent.proto.connection_scoring import (
    CandidateHistory,
    ConnectedPeerView,
    candidate_score,
    dialable_while_seeding,
    peer_to_replace,
    rank_candidates,
)


def score(source: str, **history: object) -> float:
    return candidate_score(CandidateHistory(source, **history))  # type: ignore[arg-type]


def test_sources_rank_manual_then_tracker_then_dht_then_pex() -> None:
    assert score("manual") > score("tracker") > score("dht") > score("pex")
    assert score("lsd") >= score("dht")
    assert score("something new") < score("pex")


def test_failures_lower_and_delivery_raises_the_score() -> None:
    assert score("tracker", failures=1) < score("tracker")
    assert score("tracker", failures=2) < score("tracker", failures=1)
    assert score("pex", delivered=1024 * 1024) > score("manual")
    assert score("dht", delivered=10 * 1024 * 1024) > score("dht", delivered=1024 * 1024)
    assert score("dht", ever_connected=True) > score("dht")


def test_rank_is_best_first_and_stable_for_ties() -> None:
    histories = {
        "a": CandidateHistory("pex"),
        "b": CandidateHistory("tracker"),
        "c": CandidateHistory("tracker"),
        "d": CandidateHistory("manual", failures=3),
        "e": CandidateHistory("dht", delivered=4 * 1024 * 1024),
    }
    ranked = rank_candidates(histories, histories.__getitem__, 10)
    assert ranked == ["e", "b", "c", "a", "d"]
    assert rank_candidates(histories, histories.__getitem__, 2) == ["e", "b"]
    assert rank_candidates(histories, histories.__getitem__, 0) == []


def view(key: str, *, age: float, rate: float = 0.0, interesting: bool = True,
         unchoked: bool = False) -> ConnectedPeerView:  # fmt: skip
    return ConnectedPeerView(key, 100.0 - age, rate, interesting, unchoked)


def test_idle_peer_with_nothing_we_want_is_replaced_first() -> None:
    peers = [
        view("slow but young", age=5.0),
        view("delivering", age=60.0, rate=50_000.0),
        view("idle, has what we want", age=40.0),
        view("idle, nothing we want", age=35.0, interesting=False),
        view("we upload to it", age=90.0, unchoked=True, interesting=False),
    ]
    assert peer_to_replace(peers, 100.0, min_age=30.0) == "idle, nothing we want"
    assert peer_to_replace(peers[:3], 100.0, min_age=30.0) == "idle, has what we want"
    assert peer_to_replace(peers[:2], 100.0, min_age=30.0) is None
    assert peer_to_replace([], 100.0) is None


def test_known_peers_dial_the_best_scored_addresses_first() -> None:
    known = KnownPeers()
    known.add(("10.0.0.1", 1), source="pex")
    known.add(("10.0.0.2", 2), source="tracker")
    known.add(("10.0.0.3", 3), source="manual")
    known.add(("10.0.0.4", 4), source="dht")
    assert [p.address[1] for p in known.due(0.0, 4)] == [3, 2, 4, 1]
    # the pex address delivered a lot last time: now it comes first
    known.dialling(("10.0.0.1", 1))
    known.connected(("10.0.0.1", 1))
    known.disconnected(("10.0.0.1", 1), 0.0, delivered=8 * 1024 * 1024)
    assert [p.address[1] for p in known.due(10.0, 2)] == [1, 3]
    # a penalised manual address sinks below the tracker one, without being dropped
    known.penalise(("10.0.0.3", 3), "idle")
    known.penalise(("10.0.0.3", 3), "idle")
    assert [p.address[1] for p in known.due(10.0, 4)] == [1, 2, 4, 3]
    assert known.has_due(10.0)


def test_failing_address_backs_off_exponentially_then_is_given_up() -> None:
    known = KnownPeers(max_failures=3, base_backoff=1.0, max_backoff=60.0)
    address = ("10.0.0.9", 9)
    known.add(address)
    waits = []
    now = 0.0
    for _ in range(3):
        known.dialling(address)
        known.failed(address, now, "refused")
        entry = known.get(address)
        assert entry is not None
        waits.append(entry.next_attempt - now)
        now = entry.next_attempt
    assert waits == [1.0, 2.0, 4.0]
    assert known.due(now, 5) == [] and known.exhausted()
    known.add(address)  # heard of again: a fresh start
    assert [p.address for p in known.due(now, 5)] == [address]


def test_seed_dials_tracker_dht_lsd_and_manual_peers_of_unknown_kind() -> None:
    """Regression: a seeder never dialled the leecher a tracker handed it (seed=None),
    so a leecher that announced first waited for the tracker's next interval."""
    for source in ("tracker", "dht", "lsd", "manual", "magnet"):
        assert dialable_while_seeding(CandidateHistory(source))
        assert dialable_while_seeding(CandidateHistory(source, seed=False))
        assert not dialable_while_seeding(CandidateHistory(source, seed=True))


def test_seed_keeps_waiting_where_the_peer_will_dial_it_anyway() -> None:
    """Decision 0014's duplicate guard stays where it matters."""
    assert dialable_while_seeding(CandidateHistory("pex"))  # no flags: like a tracker peer
    assert dialable_while_seeding(CandidateHistory("pex", seed=False, reachable=True))
    assert not dialable_while_seeding(CandidateHistory("pex", seed=False))  # it dialled out
    assert not dialable_while_seeding(CandidateHistory("pex", seed=True, reachable=True))
    assert not dialable_while_seeding(CandidateHistory("incoming", seed=False))


def test_known_peers_while_seeding_skip_only_known_seeds() -> None:
    known = KnownPeers()
    known.add(("10.0.0.1", 1), source="tracker")
    known.add(("10.0.0.2", 2), source="dht")
    known.add(("10.0.0.3", 3), source="tracker")
    known.dialling(("10.0.0.3", 3))
    known.connected(("10.0.0.3", 3))
    known.disconnected(("10.0.0.3", 3), 0.0, seed=True)  # it showed every piece
    assert {p.address[1] for p in known.due(10.0, 5, seeding=True)} == {1, 2}
    assert [p.address[1] for p in known.due(10.0, 5)] == [3, 1, 2]  # a seed, once connected
    assert known.has_due(10.0, seeding=True)
