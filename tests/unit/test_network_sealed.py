"""The sealed wire's sans-IO handshake and frames (``docs/networks.md`` section 8):
members with the current key get through; a wrong or old key, a non-member, a
replay, a tampered or oversized frame are refused with a clear error."""

from __future__ import annotations

import contextlib
import os
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.errors import SealedWireError, SealedWireRefused
from servent.proto.network import swarm_key
from servent.proto.network.sealed import (
    HELLO_SIZE,
    MAGIC,
    MAX_PLAINTEXT,
    FrameOpener,
    FrameSealer,
    SealedInitiator,
    SealedResponder,
    WireIdentity,
)

INFO_HASH = bytes(range(20))
EPOCH_1, EPOCH_2 = b"\x01" * 32, b"\x02" * 32


def identity() -> WireIdentity:
    private = Ed25519PrivateKey.generate()
    return WireIdentity(private.public_key().public_bytes_raw(), private.sign)


ALICE, BOB, MALLORY = identity(), identity(), identity()
MEMBERS = {ALICE.public_key, BOB.public_key}


def initiator(key: bytes = EPOCH_2, who: WireIdentity = ALICE) -> SealedInitiator:
    return SealedInitiator(INFO_HASH, swarm_key(key, INFO_HASH), who, lambda k: k in MEMBERS)


def responder(key: bytes = EPOCH_2, who: WireIdentity = BOB) -> SealedResponder:
    held = [(os.urandom(20), os.urandom(20)), (INFO_HASH, swarm_key(key, INFO_HASH))]
    return SealedResponder(held, who, lambda ih, k: ih == INFO_HASH and k in MEMBERS)


def handshake(i: SealedInitiator, r: SealedResponder, step: int = 1 << 20) -> tuple[bytes, bytes]:
    """Run the handshake feeding ``step`` bytes at a time; returns messages 1 and 3."""
    first = i.data_to_send()
    for at in range(0, len(first), step):
        r.receive_data(first[at : at + step])
    second = r.data_to_send()
    for at in range(0, len(second), step):
        i.receive_data(second[at : at + step])
    third = i.data_to_send()
    for at in range(0, len(third), step):
        r.receive_data(third[at : at + step])
    return first, third


@pytest.mark.parametrize("step", [1, 7, 1 << 20])
def test_members_with_the_current_key_agree_and_frames_flow_both_ways(step: int) -> None:
    i, r = initiator(), responder()
    first, third = handshake(i, r, step)
    assert len(first) == HELLO_SIZE and first.startswith(MAGIC) and len(third) == 116
    assert i.result is not None and r.result is not None
    assert i.result.peer_key == BOB.public_key and r.result.peer_key == ALICE.public_key
    assert r.result.info_hash == INFO_HASH
    block = os.urandom(200_000)
    sealed = i.result.sealer.seal(block)
    assert INFO_HASH not in sealed and block[:64] not in sealed
    got = b"".join(r.result.opener.open(sealed[at : at + 999]) for at in range(0, len(sealed), 999))
    assert got == block
    assert i.result.opener.open(r.result.sealer.seal(b"back")) == b"back"


def test_peer_wire_bytes_sent_right_after_message_3_reach_the_responder() -> None:
    i, r = initiator(), responder()
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())
    assert i.result is not None
    r.receive_data(i.data_to_send() + i.result.sealer.seal(b"\x13BitTorrent protocol"))
    assert r.result is not None and r.result.received == b"\x13BitTorrent protocol"


def test_wrong_or_old_epoch_key_is_refused_at_message_1() -> None:
    for key in (EPOCH_1, os.urandom(32)):
        r = responder()
        with pytest.raises(SealedWireRefused):
            r.receive_data(initiator(key).data_to_send())
        assert r.data_to_send() == b"" and r.result is None  # not a byte back


def test_a_non_member_is_refused_by_either_side_even_with_the_key() -> None:
    r = responder()
    with pytest.raises(SealedWireRefused, match="not a member"):
        handshake(initiator(who=MALLORY), r)
    assert r.result is None
    i = initiator()
    with pytest.raises(SealedWireRefused, match="not a member"):
        handshake(i, responder(who=MALLORY))
    assert i.result is None and i.data_to_send() == b""  # message 3 never sent


def test_a_forged_signature_is_refused() -> None:
    def forged(data: bytes) -> bytes:
        return MALLORY.sign(data)

    r = responder()
    with pytest.raises(SealedWireRefused, match="signature"):
        handshake(initiator(who=WireIdentity(ALICE.public_key, forged)), r)


def test_a_replayed_handshake_gets_nowhere() -> None:
    first, third = handshake(initiator(), responder())
    r = responder()
    r.receive_data(first)  # message 1 replays (its tag is valid) ...
    with pytest.raises(SealedWireError, match="authentication"):
        r.receive_data(third)  # ... but the keys are new: message 3 fails
    assert r.result is None


def test_tampered_reordered_and_oversized_frames_are_refused() -> None:
    key = os.urandom(32)
    sealer = FrameSealer(key)
    one, two = sealer.seal(b"one"), sealer.seal(b"two")
    tampered = bytearray(one)
    tampered[-1] ^= 1
    with pytest.raises(SealedWireError, match="authentication"):
        FrameOpener(key).open(bytes(tampered))
    with pytest.raises(SealedWireError, match="authentication"):
        FrameOpener(key).open(two)  # out of order
    for length in (MAX_PLAINTEXT + 17, 2**32 - 1, 16, 0):
        with pytest.raises(SealedWireError, match="refused"):
            FrameOpener(key).open(struct.pack(">I", length))
    opener = FrameOpener(key)
    assert opener.open(one + two) == b"onetwo"
    with pytest.raises(SealedWireError, match="authentication"):
        opener.open(one)  # a replayed frame


def test_writes_are_cut_into_bounded_frames() -> None:
    key = os.urandom(32)
    sealed = FrameSealer(key).seal(bytes(MAX_PLAINTEXT * 2 + 1))
    lengths = []
    at = 0
    while at < len(sealed):
        (length,) = struct.unpack_from(">I", sealed, at)
        lengths.append(length)
        at += 4 + length
    assert lengths == [MAX_PLAINTEXT + 16, MAX_PLAINTEXT + 16, 17]


def test_hostile_bytes_only_ever_raise_sealed_wire_errors() -> None:
    for size in (1, 15, 16, 79, 80, 81, 200, 5000):
        for make in (os.urandom, lambda n: (MAGIC + os.urandom(n))[:n]):
            r = responder()
            with contextlib.suppress(SealedWireError):
                r.receive_data(make(size))
            assert r.result is None
            i = initiator()
            with contextlib.suppress(SealedWireError):
                i.receive_data(make(size))
            assert i.result is None
