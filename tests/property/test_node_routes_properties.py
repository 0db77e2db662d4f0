"""Hypothesis: ``sv_nodes`` parsers take any input and raise only NodeRoutesError."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bencode import encode
from servent.errors import NodeRoutesError
from servent.proto.node_routes import decode_nodes, encode_advert, encode_nodes, parse_advert

values = (
    st.integers(-5, 2**40)
    | st.binary(max_size=60)
    | st.lists(st.binary(min_size=36, max_size=52), max_size=3)
)
entries = st.dictionaries(st.sampled_from([b"a", b"k", b"r", b"s", b"x"]), values, max_size=5)


@given(st.binary(max_size=400))
@settings(max_examples=400)
def test_random_bytes_raise_only_node_routes_error(data: bytes) -> None:
    try:
        found = decode_nodes(data)
    except NodeRoutesError:
        return
    assert decode_nodes(encode_nodes(found)) == found


@given(st.lists(entries, max_size=40))
@settings(max_examples=400)
def test_near_valid_messages_parse_and_round_trip_or_raise(listed: list[dict[bytes, Any]]) -> None:
    try:
        found = decode_nodes(encode({b"n": listed}))
    except NodeRoutesError:
        return
    assert decode_nodes(encode_nodes(found)) == found


@given(entries)
@settings(max_examples=400)
def test_any_advert_parses_or_raises_node_routes_error(raw: dict[bytes, Any]) -> None:
    try:
        advert = parse_advert(raw)
    except NodeRoutesError:
        return
    assert parse_advert(encode_advert(advert)) == advert
