"""Hostile bytes never crash the gossip frame parser: a frame or a GossipError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bencode import encode
from servent.proto.gossip import GossipError, Graft, IHave, IWant, Prune, Publish
from servent.proto.gossip.frames import decode_frame, encode_frame


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_decode_or_raise_gossip_error(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except GossipError:
        return
    assert decode_frame(encode_frame(frame)) == frame


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.integers() | st.binary(max_size=40),
        lambda inner: (
            st.lists(inner, max_size=5)
            | st.dictionaries(
                st.sampled_from([b"y", b"m", b"ids", b"a", b"s", b"p"]), inner, max_size=5
            )
        ),
        max_leaves=20,
    )
)
def test_well_formed_bencode_of_any_shape_is_a_frame_or_a_gossip_error(value: object) -> None:
    try:
        frame = decode_frame(encode(value))  # type: ignore[arg-type]
    except GossipError:
        return
    assert isinstance(frame, Publish | IHave | IWant | Graft | Prune)
