"""The live protocol's messages: round trips, and hostile input refused with LiveError."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.bencode import encode
from servent.proto.live import LiveError, LivePiece, sign_piece
from servent.proto.live_wire import (
    MAX_WIRE_PIECE,
    Busy,
    Have,
    Hello,
    LiveMessage,
    Peers,
    PieceMessage,
    Want,
    decode_live_message,
    encode_live_message,
)

KEY = Ed25519PrivateKey.generate()
TOPIC = bytes(range(20))


@pytest.mark.parametrize(
    "message",
    [
        Hello(TOPIC, None, 0),
        Hello(TOPIC, 41, 6881, "concert.ts"),
        Have(0),
        Want(2**62),
        Busy(5),
        PieceMessage(sign_piece(KEY, 3, b"frames")),
        PieceMessage(sign_piece(KEY, 4, b"")),  # the end of a broadcast
        Peers((("127.0.0.1", 6881), ("::1", 7000))),
        Peers(()),
    ],
)
def test_every_message_round_trips(message: LiveMessage) -> None:
    assert decode_live_message(encode_live_message(message)) == message


def test_a_full_size_piece_fits_one_channel_message() -> None:
    raw = encode_live_message(PieceMessage(sign_piece(KEY, 2**40, b"x" * MAX_WIRE_PIECE)))
    assert len(raw) <= 64 * 1024 + 1024
    assert isinstance(decode_live_message(raw), PieceMessage)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"i3e",
        b"x" * (70 * 1024),
        encode({b"t": b"dance"}),
        encode({b"t": b"have"}),
        encode({b"t": b"have", b"i": -1}),
        encode({b"t": b"want", b"i": 2**63}),
        encode({b"t": b"busy", b"i": b"1"}),
        encode({b"t": b"hello", b"k": b"short", b"e": 1, b"p": 1}),
        encode({b"t": b"hello", b"k": TOPIC, b"e": -2, b"p": 1}),
        encode({b"t": b"hello", b"k": TOPIC, b"e": 1, b"p": 70000}),
        encode({b"t": b"hello", b"k": TOPIC, b"e": 1, b"p": 1, b"n": b"n" * 201}),
        encode({b"t": b"piece"}),
        encode({b"t": b"piece", b"x": b"not bencode"}),
        encode(
            {b"t": b"piece", b"x": LivePiece(1, b"x" * (MAX_WIRE_PIECE + 1), b"s" * 64).to_bytes()}
        ),
        encode({b"t": b"peers", b"a": b"\x7f\x00\x00\x01\x1a\xe1"}),
        encode({b"t": b"peers", b"a": [b"\x7f\x00\x00\x01"]}),
        encode({b"t": b"peers", b"a": [b"\x7f\x00\x00\x01\x1a\xe1"] * 51}),
    ],
)
def test_hostile_messages_raise_live_error(raw: bytes) -> None:
    with pytest.raises(LiveError):
        decode_live_message(raw)


def test_a_long_name_is_cut_when_sent_not_refused() -> None:
    raw = encode_live_message(Hello(TOPIC, 1, 1, "n" * 500))
    decoded = decode_live_message(raw)
    assert isinstance(decoded, Hello) and decoded.name == "n" * 200
