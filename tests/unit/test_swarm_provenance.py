"""Block provenance: who gets banned or put on parole when a piece fails its hash."""

from __future__ import annotations

import os

from servent.net.known_peers import KnownPeers
from servent.net.provenance import BanList, Provenance

BLOCK = 16384
ALICE = ("10.0.0.1", 6881, b"A" * 20)
BOB = ("10.0.0.2", 6881, b"B" * 20)
LOCAL_1 = ("127.0.0.1", 7001, b"L" * 20)
LOCAL_2 = ("127.0.0.1", 7002, b"M" * 20)


def test_single_sender_of_a_failed_piece_is_banned_at_once() -> None:
    provenance = Provenance()
    data = os.urandom(4 * BLOCK)
    guilty = provenance.piece_failed(3, data, {i * BLOCK: ALICE for i in range(4)})
    assert guilty == {ALICE}
    assert not provenance.parole


def test_mixed_failed_piece_puts_everyone_on_parole_then_smart_ban_convicts() -> None:
    provenance = Provenance()
    good = os.urandom(4 * BLOCK)
    bad = bytearray(good)
    bad[BLOCK + 5] ^= 0xFF  # Bob's block is corrupt
    sources = {0: ALICE, BLOCK: BOB, 2 * BLOCK: ALICE, 3 * BLOCK: BOB}
    assert provenance.piece_failed(7, bad, sources) == set()
    assert provenance.on_parole(ALICE) and provenance.on_parole(BOB)
    # Fetched again, from Alice alone, it verifies: Bob's earlier block differs.
    guilty = provenance.piece_verified(7, good, {i * BLOCK: ALICE for i in range(4)})
    assert guilty == {BOB}
    assert not provenance.on_parole(ALICE)


def test_a_verified_piece_takes_its_senders_off_parole_only() -> None:
    provenance = Provenance()
    provenance.parole |= {ALICE, BOB}
    assert provenance.piece_verified(2, bytes(BLOCK), {0: ALICE}) == set()
    assert provenance.parole == {BOB}
    assert Provenance().piece_verified(2, bytes(BLOCK), {0: ALICE}) == set()


def test_short_last_block_is_compared_over_its_own_length() -> None:
    provenance = Provenance()
    good = os.urandom(2 * BLOCK + 100)
    sources = {0: ALICE, BLOCK: BOB, 2 * BLOCK: BOB}
    bad = good[:-1] + bytes([good[-1] ^ 1])
    provenance.piece_failed(0, bad, sources)
    assert provenance.piece_verified(0, good, sources) == {BOB}


def test_bans_cover_the_ip_except_on_loopback() -> None:
    bans = BanList()
    bans.ban(ALICE)
    assert bans.is_banned("10.0.0.1", 9999)
    bans.ban(LOCAL_1)
    assert bans.is_banned("127.0.0.1", 7001)
    assert not bans.is_banned("127.0.0.1", 7002)  # another honest local peer
    assert bans.is_banned("127.0.0.1", 40000, LOCAL_1[2])  # same peer id, new port
    assert not bans.is_banned(*LOCAL_2)


def test_known_peers_back_off_and_give_up() -> None:
    known = KnownPeers(max_failures=3, base_backoff=1.0, reconnect_delay=2.0)
    address = ("127.0.0.1", 5000)
    known.add(address)
    assert [p.address for p in known.due(0.0, 10)] == [address]
    known.dialling(address)
    assert known.due(0.0, 10) == []
    known.failed(address, 0.0, "Connection refused")
    assert known.due(0.5, 10) == [] and known.due(1.0, 10)
    known.failed(address, 1.0, "Connection refused")
    assert known.due(2.5, 10) == [] and known.due(3.0, 10)
    assert not known.exhausted()
    known.failed(address, 3.0, "Connection refused")
    assert known.exhausted()
    assert known.errors() == ["127.0.0.1:5000: Connection refused"]
    known.add(address)  # given again: a fresh start
    assert known.due(100.0, 10)


def test_a_working_peer_is_redialled_soon_after_it_drops() -> None:
    known = KnownPeers(reconnect_delay=2.0)
    address = ("::1", 5000)
    known.add(address)
    known.dialling(address)
    known.connected(address)
    known.disconnected(address, 10.0)
    assert known.due(11.0, 1) == [] and known.due(12.0, 1)
