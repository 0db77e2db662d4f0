"""Noise XX against an independent implementation's transcript, and the payload checks.

The expected bytes were produced by the ``noiseprotocol`` package (0.3.1, PyPI),
an implementation of the Noise framework that shares no code with servent,
with the same fixed keys (X25519 statics and ephemerals, Ed25519 identities)
and the channel's prologue; our HandshakeXX must reproduce them byte for byte.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from servent.proto.channel import ChannelAuthError, ChannelHandshakeError
from servent.proto.channel.frames import MAGIC
from servent.proto.channel.noise import CipherState, HandshakeXX, LocalKeys, verify_payload

MESSAGE_1 = bytes.fromhex("5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22")
MESSAGE_2 = bytes.fromhex(
    "13be4feaeaf204c7fd3358fc9c00721881d174278128227ec674f37f7fe97b6d6d27c950143e4f2b825815b3ee89dcf7"
    "600968b6527edefd442a1cd8b3d69122f8f04c2fc609e357cff6d184c8bdff0c6863e014b132c02b6f51ba6c05188456"
    "a09ce777d4ce91ec94c7e060d0a39990a09f18f944ba793ed47b503d15e9bd0cb631bd394f1d05518f4aebf6039d27c7"
    "27e7a1a03034b582f045e278c5284af0d4332913525f35263f8ef0a637c31f2aa67a3024b8cb46445bfb80996154cb13"
)
MESSAGE_3 = bytes.fromhex(
    "0ad57e13ed7fce0beaf70791b32d2ac94847302de4b084b4dea90445a6d07492d4fe73cb6f55f67f2af60b031a8cdcaf"
    "f4e94bef4258cdf458effbd0cf3aef2cc9d36c089cff8b0512c7fd5d024237e767412c2cb64775d6d90202b3c808d70d"
    "680c4a9ac7fdaa2c636630fbda16abe3e083aa40d1dd1f6c7a8e382db7e797aa92678af56831418a234db4d00fd27f51"
    "223de4868c9f5869d02b95287a5308db"
)
HANDSHAKE_HASH = bytes.fromhex("420e5a69894cdcf3fa47337a99a662a465f45eaae326b8ba2a04565aaa55ad01")
INITIATOR_FIRST_FRAME = bytes.fromhex(
    "5bafb4e3fddadf00ba513518dbd93de7ac9cf361b1af75"
)  # "servent", nonce 0
RESPONDER_FIRST_FRAME = bytes.fromhex("c7013f71b036468c70ee1b3a78f4aaaeace49fc5")  # "node", nonce 0


def _keys(seed: int) -> LocalKeys:
    identity = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return LocalKeys.create(identity, X25519PrivateKey.from_private_bytes(bytes([seed + 1]) * 32))


def _pair() -> tuple[HandshakeXX, HandshakeXX]:
    initiator = HandshakeXX(
        _keys(1),
        initiator=True,
        prologue=MAGIC,
        ephemeral=X25519PrivateKey.from_private_bytes(bytes([3]) * 32),
    )
    responder = HandshakeXX(
        _keys(5),
        initiator=False,
        prologue=MAGIC,
        ephemeral=X25519PrivateKey.from_private_bytes(bytes([7]) * 32),
    )
    return initiator, responder


def test_transcript_matches_an_independent_noise_implementation() -> None:
    initiator, responder = _pair()
    assert initiator.write_1() == MESSAGE_1
    responder.read_1(MESSAGE_1)
    assert responder.write_2() == MESSAGE_2
    assert initiator.read_2(MESSAGE_2) == _keys(5).public_key
    assert initiator.write_3() == MESSAGE_3
    assert responder.read_3(MESSAGE_3) == _keys(1).public_key
    assert initiator.handshake_hash == responder.handshake_hash == HANDSHAKE_HASH
    send, receive = initiator.split()
    assert send.encrypt(b"", b"servent") == INITIATOR_FIRST_FRAME
    assert receive.decrypt(b"", RESPONDER_FIRST_FRAME) == b"node"
    responder_send, responder_receive = responder.split()
    assert responder_send.encrypt(b"", b"node") == RESPONDER_FIRST_FRAME
    assert responder_receive.decrypt(b"", INITIATOR_FIRST_FRAME) == b"servent"


def test_rekey_changes_the_key_the_same_way_on_both_sides() -> None:
    sender, receiver = CipherState(bytes(32)), CipherState(bytes(32))
    before = CipherState(bytes(32)).encrypt(b"", b"x")
    sender.rekey()
    receiver.rekey()
    sealed = sender.encrypt(b"", b"x")
    assert sealed != before
    assert receiver.decrypt(b"", sealed) == b"x"


def test_payload_checks() -> None:
    keys = _keys(9)
    static = MESSAGE_1  # any 32 bytes that the signature does not cover
    with pytest.raises(ChannelAuthError, match="vouch"):
        verify_payload(keys.payload, static)
    with pytest.raises(ChannelHandshakeError, match="payload"):
        verify_payload(keys.payload[:95], static)
