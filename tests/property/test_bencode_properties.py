"""Hypothesis: bencode round trips and hostile input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bencode import BValue, Limits, decode, encode
from servent.errors import ServentError

values: st.SearchStrategy[BValue] = st.recursive(
    st.integers(-(2**100), 2**100) | st.binary(max_size=64),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.binary(max_size=12), children, max_size=6),
    max_leaves=40,
)


@given(values)
def test_round_trip(value: BValue) -> None:
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


@given(st.binary(max_size=512))
@settings(max_examples=500)
def test_random_bytes_raise_only_servent_errors(data: bytes) -> None:
    try:
        decoded = decode(data, Limits(max_length=1024, max_depth=32, max_values=2000))
    except ServentError:
        return
    assert encode(decoded) == data


@given(values, st.data())
@settings(max_examples=500)
def test_mutated_encodings_are_either_canonical_or_refused(
    value: BValue, data: st.DataObject
) -> None:
    encoded = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip" and encoded:
            i = data.draw(st.integers(0, len(encoded) - 1))
            encoded[i] = data.draw(st.integers(0, 255))
        elif op == "cut" and encoded:
            i = data.draw(st.integers(0, len(encoded) - 1))
            del encoded[i:]
        else:
            i = data.draw(st.integers(0, len(encoded)))
            encoded[i:i] = data.draw(st.binary(min_size=1, max_size=4))
    try:
        decoded = decode(bytes(encoded))
    except ServentError:
        return
    assert encode(decoded) == bytes(encoded)
