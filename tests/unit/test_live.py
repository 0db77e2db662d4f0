"""Live broadcasts: keys, signed pieces (hostile input too) and the window at the edge."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.bencode import encode
from servent.proto.live import (
    MAX_LIVE_PIECE,
    LiveError,
    LivePiece,
    LiveWindow,
    decode_piece,
    format_live_key,
    live_topic,
    parse_live_key,
    parse_live_key_with_hint,
    sign_piece,
    verify_piece,
)


def test_live_key_round_trip_and_topic() -> None:
    public = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    key = format_live_key(public)
    assert key.startswith("live:") and len(key) == 60
    assert parse_live_key(key) == public
    assert len(live_topic(public)) == 20
    for bad in ("node:" + key[5:], key[:-1], key[:-1] + ("a" if key[-1] != "a" else "b")):
        with pytest.raises(LiveError):
            parse_live_key(bad)


def test_a_signed_piece_verifies_after_encoding_and_tampering_is_caught() -> None:
    broadcaster = Ed25519PrivateKey.generate()
    public = broadcaster.public_key().public_bytes_raw()
    piece = sign_piece(broadcaster, 7, b"frame data")
    received = decode_piece(piece.to_bytes())
    assert received == piece
    verify_piece(public, received)
    for forged in (
        LivePiece(8, piece.data, piece.signature),  # replayed under another index
        LivePiece(7, b"frame dat4", piece.signature),
        sign_piece(Ed25519PrivateKey.generate(), 7, b"frame data"),  # someone else
    ):
        with pytest.raises(LiveError):
            verify_piece(public, forged)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"i1e",
        encode({b"d": b"x", b"i": 1}),
        encode({b"d": b"x", b"i": -1, b"s": bytes(64)}),
        encode({b"d": b"x", b"i": 1, b"s": bytes(63)}),
        encode({b"d": 5, b"i": 1, b"s": bytes(64)}),
        encode({b"d": bytes(MAX_LIVE_PIECE + 1), b"i": 1, b"s": bytes(64)}),
        b"d1:d1:x1:ii1e1:s64:" + bytes(64) + b"e" + b"junk",
    ],
)
def test_hostile_piece_messages_are_refused(raw: bytes) -> None:
    with pytest.raises(LiveError):
        decode_piece(raw)


def test_the_window_follows_the_live_edge_and_a_late_joiner_starts_there() -> None:
    window = LiveWindow(3)
    assert window.missing() == [] and window.accepts(1000)
    assert window.add(100) == []  # a late joiner: the first verified piece sets the edge
    assert window.missing() == [99, 98]  # only the window, never the past
    assert not window.accepts(97) and window.add(97) == []
    window.add(99)
    assert window.add(102) == [99]  # the edge moved: older pieces drop out
    assert window.missing() == [101]
    assert window.edge == 102 and window.have == {100, 102}


def test_live_key_address_hint_round_trips_and_bad_hints_are_refused() -> None:
    public = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    for hint in (("192.0.2.7", 6881), ("::1", 7000)):
        key = format_live_key(public, hint)
        assert parse_live_key_with_hint(key) == (public, hint)
        assert parse_live_key(key) == public
    assert parse_live_key_with_hint(format_live_key(public)) == (public, None)
    plain = format_live_key(public)
    for bad in ("@host:1", "@1.2.3.4", "@1.2.3.4:0", "@1.2.3.4:70000", "@[::1]:x", "@::1"):
        with pytest.raises(LiveError):
            parse_live_key_with_hint(plain + bad)
