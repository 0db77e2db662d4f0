"""Hostile bytes never crash the direct-message frame parser: a frame or a MessageFrameError."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bencode import encode
from servent.proto.message_frames import (
    MAX_TEXT,
    Ack,
    DirectMessage,
    MessageFrameError,
    decode_message_frame,
    encode_message_frame,
)

ID = b"\x01" * 16


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_decode_or_raise(data: bytes) -> None:
    try:
        frame = decode_message_frame(data)
    except MessageFrameError:
        return
    assert decode_message_frame(encode_message_frame(frame)) == frame


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([b"y", b"id", b"t", b"p", b"x"]),
        st.integers(min_value=-(2**70), max_value=2**70)
        | st.binary(max_size=40)
        | st.sampled_from([b"msg", b"ack", ID]),
        max_size=5,
    )
)
def test_well_formed_bencode_of_any_shape_decodes_or_raises(value: dict[bytes, object]) -> None:
    try:
        frame = decode_message_frame(encode(value))  # type: ignore[arg-type]
    except MessageFrameError:
        return
    # Any 16 bytes are an id (hypothesis may draw them as well as ID): the frame keeps them.
    assert frame.id == value[b"id"]


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=2**40 - 1))
def test_messages_round_trip(payload: bytes, sent: int) -> None:
    for frame in (DirectMessage(ID, sent, payload), Ack(ID)):
        assert decode_message_frame(encode_message_frame(frame)) == frame


def test_bounds_are_refused_with_a_reason() -> None:
    too_long = encode({b"y": b"msg", b"id": ID, b"t": 1, b"p": b"x" * (MAX_TEXT + 1)})
    for data, reason in (
        (too_long, "at most|does not decode"),
        (encode({b"y": b"msg", b"id": b"short", b"t": 1, b"p": b""}), "16 bytes"),
        (encode({b"y": b"msg", b"id": ID, b"t": -1, b"p": b""}), "integer time"),
        (encode({b"y": b"nope", b"id": ID}), "unknown frame type"),
        (encode([b"y"]), "dictionary"),
    ):
        try:
            decode_message_frame(data)
        except MessageFrameError as exc:
            assert re.search(reason, str(exc)), (reason, exc)
        else:
            raise AssertionError(f"accepted: {data[:40]!r}")
    exact = encode_message_frame(DirectMessage(ID, 1, b"x" * MAX_TEXT))
    assert decode_message_frame(exact) == DirectMessage(ID, 1, b"x" * MAX_TEXT)
