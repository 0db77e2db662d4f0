"""Gossip frames: round trips and bounded decoding."""

from __future__ import annotations

import pytest

from servent.codec.bencode import encode
from servent.proto.gossip import GossipError, GossipMessage, Graft, IHave, IWant, Prune, Publish
from servent.proto.gossip.frames import decode_frame, encode_frame

MESSAGE = GossipMessage(b"a" * 32, 7, 1_800_000_000, "général".encode(), b"text", b"s" * 64)


@pytest.mark.parametrize(
    "frame",
    [Publish(MESSAGE), IHave((b"i" * 20, b"j" * 20)), IWant((b"k" * 20,)), Graft(), Prune()],
)
def test_frames_round_trip(frame: object) -> None:
    assert decode_frame(encode_frame(frame)) == frame  # type: ignore[arg-type]


def test_message_encoding_round_trips() -> None:
    assert GossipMessage.decode(MESSAGE.encode()) == MESSAGE


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (encode({b"y": b"ihave", b"ids": [b"x" * 20] * 257}), "at most 256"),
        (encode({b"y": b"iwant", b"ids": [b"short"]}), "20 bytes"),
        (encode({b"y": b"pub", b"m": {**MESSAGE.to_dict(), b"a": b"short"}}), "32-byte"),
        (encode({b"y": b"pub", b"m": {**MESSAGE.to_dict(), b"c": b"c" * 65}}), "channel"),
        (encode({b"y": b"pub", b"m": {**MESSAGE.to_dict(), b"c": b"\xff"}}), "UTF-8"),
        (encode({b"y": b"pub", b"m": {**MESSAGE.to_dict(), b"s": -1}}), "out of range"),
        (encode({b"y": b"pub", b"m": {**MESSAGE.to_dict(), b"p": 5}}), "wrong type"),
        (encode({b"y": b"pub", b"m": {**MESSAGE.to_dict(), b"p": bytes(70_000)}}), "exceeds"),
        (encode({b"y": b"boom"}), "unknown frame"),
        (encode([1, 2]), "dictionary"),
        (b"d1:y", "does not decode"),
    ],
)
def test_hostile_frames_are_refused_with_a_clear_error(raw: bytes, problem: str) -> None:
    with pytest.raises(GossipError, match=problem):
        decode_frame(raw)
