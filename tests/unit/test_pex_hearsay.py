"""What a torrent does with what PEX tells it: flags steer the dial order and the
encryption offered, ``dropped`` retracts a peer's own hearsay (and nothing more)."""

from __future__ import annotations

from dataclasses import dataclass, field

from servent.net.known_peers import Address, KnownPeers
from servent.net.peer_extensions import TorrentExtensions
from servent.proto.connection_scoring import (
    REACHABLE_BONUS,
    SEED_BONUS,
    CandidateHistory,
    candidate_score,
    rank_candidates,
)
from servent.proto.mse import EncryptionPolicy
from servent.proto.peerwire import ExtensionMessage
from servent.proto.pex import FLAG_ENCRYPTION, FLAG_REACHABLE, FLAG_SEED, PexMessage, encode_pex
from servent.proto.session_extensions import UT_PEX

SEED, LEECH, CRYPT = ("10.0.0.1", 1001), ("10.0.0.2", 1002), ("10.0.0.3", 1003)


@dataclass
class _Session:
    closed: list[str] = field(default_factory=list)

    def close(self, reason: str) -> None:
        self.closed.append(reason)


@dataclass(eq=False)
class _Peer:
    """The two things TorrentExtensions reads of a peer when it receives PEX."""

    label: str
    session: _Session = field(default_factory=_Session)


def _torrent() -> tuple[TorrentExtensions, KnownPeers]:
    known = KnownPeers()

    def add_peers(found: object) -> None:
        for address in found:  # type: ignore[attr-defined]
            known.add(address, source="pex")

    return TorrentExtensions(b"d4:name1:xe", add_peers=add_peers, known=known), known


def _pex(
    extensions: TorrentExtensions,
    peer: _Peer,
    now: float,
    added: tuple[tuple[Address, int], ...] = (),
    dropped: tuple[Address, ...] = (),
) -> None:
    payload = encode_pex(PexMessage(added, dropped))
    extensions.on_event(peer, ExtensionMessage(UT_PEX, payload), now)  # type: ignore[arg-type]


def test_pex_flags_mark_seeds_leechers_and_peers_preferring_encryption() -> None:
    extensions, known = _torrent()
    added = ((SEED, FLAG_SEED | FLAG_REACHABLE), (LEECH, FLAG_REACHABLE), (CRYPT, FLAG_ENCRYPTION))
    _pex(extensions, _Peer("hub"), 0.0, added)
    seed, leech, crypt = (known.get(a) for a in (SEED, LEECH, CRYPT))
    assert seed is not None and leech is not None and crypt is not None
    assert (seed.seed, leech.seed, crypt.seed) == (True, False, False)
    assert extensions.pex_seed_flags == 1
    assert crypt.prefers_encryption and not seed.prefers_encryption
    # Downloading: the seed is dialled first.  Seeding: only the leecher its reporter
    # dialled (reachable), never the seed, nor CRYPT (it only ever dialled out).
    assert [p.address for p in known.due(0.0, 3)] == [SEED, LEECH, CRYPT]
    assert [p.address for p in known.due(0.0, 3, seeding=True)] == [LEECH]
    # "Prefers encryption": MSE only (no plaintext offered) when the policy allows it.
    assert crypt.dial_policy(EncryptionPolicy.ENABLED) is EncryptionPolicy.REQUIRED
    assert crypt.dial_policy(EncryptionPolicy.OFF) is EncryptionPolicy.OFF
    assert leech.dial_policy(EncryptionPolicy.ENABLED) is EncryptionPolicy.ENABLED


def test_an_encryption_hint_that_fails_is_forgotten_for_the_next_attempt() -> None:
    known = KnownPeers()
    known.add(CRYPT, source="pex")
    known.note_flags(CRYPT, seed=False, prefers_encryption=True)
    known.dialling(CRYPT)
    known.failed(CRYPT, 0.0, "MSE handshake failed")
    entry = known.get(CRYPT)
    assert entry is not None and entry.dial_policy(EncryptionPolicy.ENABLED) is (
        EncryptionPolicy.ENABLED
    )


def test_a_peer_seen_to_be_a_seed_is_not_dialled_while_seeding() -> None:
    known = KnownPeers(reconnect_delay=0.0)
    known.add(LEECH, source="pex")
    known.note_flags(LEECH, seed=False, prefers_encryption=False, reachable=True)
    assert known.has_due(0.0, seeding=True)
    known.dialling(LEECH)
    known.connected(LEECH)
    known.note_flags(LEECH, seed=False, prefers_encryption=False, reachable=True)  # busy
    known.disconnected(LEECH, 1.0, seed=True)  # it had every piece: "both are seeds"
    assert not known.has_due(1.0, seeding=True) and known.due(1.0, 5, seeding=True) == []
    assert [p.address for p in known.due(1.0, 5)] == [LEECH]
    # Nobody said what a tracker's address is: a seeding torrent dials it (decision 0021).
    known.add(SEED, source="tracker")
    assert [p.address for p in known.due(1.0, 5, seeding=True)] == [SEED]


def test_seed_bonus_and_the_seeding_filter_in_the_scores() -> None:
    plain, seed = CandidateHistory("pex"), CandidateHistory("pex", seed=True)
    assert candidate_score(seed) == candidate_score(plain) + SEED_BONUS
    assert candidate_score(seed) == candidate_score(CandidateHistory("tracker"))
    leecher = CandidateHistory("dht", seed=False, reachable=True)
    histories = [CandidateHistory("tracker"), seed, CandidateHistory("dht", seed=False), leecher]
    assert rank_candidates(histories, lambda h: h, 4) == [histories[0], seed, leecher, histories[2]]
    # Seeding: everything but the known seed (a DHT leecher's reachability is not asked).
    seeding = rank_candidates(histories, lambda h: h, 4, seeding=True)
    assert seeding == [histories[0], leecher, histories[2]]


def test_dropped_retracts_only_the_same_peers_unproven_hearsay() -> None:
    extensions, known = _torrent()
    alice, bob = _Peer("alice"), _Peer("bob")
    gone, shared, busy, worked, kept = ((f"10.1.0.{n}", 7000 + n) for n in range(1, 6))
    tracker = ("10.1.0.9", 7009)
    known.add(tracker, source="tracker")
    _pex(extensions, alice, 0.0, tuple((a, 0) for a in (gone, shared, busy, worked, kept)))
    _pex(extensions, bob, 0.0, ((shared, 0),))
    known.dialling(busy)
    known.dialling(worked)
    known.connected(worked)
    known.disconnected(worked, 1.0)
    # 30 s later (PEX flood rule: one message per 20 s) Alice drops them all, and more.
    _pex(extensions, alice, 30.0, dropped=(gone, shared, busy, worked, tracker))
    assert gone not in known and gone not in extensions.pex_learnt
    assert shared in known, "Bob told us of it too"
    assert busy in known, "a connection to it is being made"
    assert worked in known, "it once completed a handshake"
    assert tracker in known, "a tracker told us of it, not Alice"
    # Bob cannot retract what only Alice said; once both retracted ``shared``, it goes.
    _pex(extensions, bob, 30.0, dropped=(shared, kept))
    assert shared not in known and kept in known
    _pex(extensions, alice, 60.0, ((gone, 0),))
    _pex(extensions, bob, 60.0, dropped=(gone,))
    assert gone in known
    assert not alice.session.closed and not bob.session.closed


def test_an_address_reported_reachable_is_dialled_before_one_seen_only_incoming() -> None:
    extensions, known = _torrent()
    # The hub dialled LEECH (reachable); CRYPT only dialled the hub (no 0x10 flag).
    _pex(extensions, _Peer("hub"), 0.0, ((CRYPT, 0), (LEECH, FLAG_REACHABLE)))
    assert [p.address for p in known.due(0.0, 2)] == [LEECH, CRYPT]
    reachable = CandidateHistory("pex", reachable=True)
    assert candidate_score(reachable) == candidate_score(CandidateHistory("pex")) + REACHABLE_BONUS
