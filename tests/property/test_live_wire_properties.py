"""Hypothesis: the live protocol's parser takes any bytes and raises only LiveError."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bencode import encode
from servent.proto.live import LiveError
from servent.proto.live_wire import decode_live_message, encode_live_message

kinds = st.sampled_from([b"hello", b"have", b"want", b"busy", b"piece", b"peers", b"?"])
fields = st.dictionaries(
    st.sampled_from([b"k", b"e", b"p", b"n", b"i", b"x", b"a"]),
    st.integers(-5, 2**64) | st.binary(max_size=40) | st.lists(st.binary(max_size=20), max_size=5),
    max_size=5,
)


@given(st.binary(max_size=300))
@settings(max_examples=400)
def test_random_bytes_raise_only_live_error(data: bytes) -> None:
    try:
        message = decode_live_message(data)
    except LiveError:
        return
    assert decode_live_message(encode_live_message(message)) == message


@given(kinds, fields)
@settings(max_examples=400)
def test_well_formed_dictionaries_parse_or_raise_live_error(
    kind: bytes, rest: dict[bytes, Any]
) -> None:
    try:
        message = decode_live_message(encode({b"t": kind, **rest}))
    except LiveError:
        return
    assert decode_live_message(encode_live_message(message)) == message
