"""Unit tests of the strict bencode codec."""

from __future__ import annotations

import pytest

from servent.codec import bencode
from servent.codec.bencode import Limits, decode, decode_prefix, decode_with_raw, encode
from servent.errors import (
    BencodeError,
    BencodeLimitError,
    BencodeNonCanonicalError,
    BencodeTrailingDataError,
    BencodeTruncatedError,
    ServentError,
)


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"i0e", 0),
        (b"i-42e", -42),
        (b"i1234567890123456789e", 1234567890123456789),
        (b"0:", b""),
        (b"4:spam", b"spam"),
        (b"le", []),
        (b"de", {}),
        (b"l4:spami7ee", [b"spam", 7]),
        (b"d3:bar4:spam3:fooi42ee", {b"bar": b"spam", b"foo": 42}),
        (b"d1:ad1:bl1:ceee", {b"a": {b"b": [b"c"]}}),
    ],
)
def test_decodes_canonical_values_and_encodes_them_back(data: bytes, value: object) -> None:
    assert decode(data) == value
    assert encode(value) == data  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"i03e", BencodeNonCanonicalError),
        (b"i-0e", BencodeNonCanonicalError),
        (b"i-03e", BencodeNonCanonicalError),
        (b"04:spam", BencodeNonCanonicalError),
        (b"d1:b0:1:a0:e", BencodeNonCanonicalError),
        (b"d1:a0:1:a0:e", BencodeNonCanonicalError),
        (b"i1ei2e", BencodeTrailingDataError),
        (b"4:spamx", BencodeTrailingDataError),
        (b"i42", BencodeTruncatedError),
        (b"5:spam", BencodeTruncatedError),
        (b"l4:spam", BencodeTruncatedError),
        (b"d1:a", BencodeTruncatedError),
        (b"", BencodeTruncatedError),
        (b"ie", BencodeError),
        (b"i-e", BencodeError),
        (b"i1.5e", BencodeError),
        (b"x", BencodeError),
        (b"di1ei2ee", BencodeError),
        (b"-1:a", BencodeError),
        (b"1a:b", BencodeError),
        (b"i" + b"9" * 40 + b"e", BencodeLimitError),
    ],
)
def test_rejects_malformed_and_non_canonical_input(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode(data)


def test_every_failure_is_a_servent_error() -> None:
    assert issubclass(BencodeError, ServentError)


def test_depth_is_bounded() -> None:
    limits = Limits(max_depth=10)
    decode(b"l" * 10 + b"e" * 10, limits)
    with pytest.raises(BencodeLimitError):
        decode(b"l" * 11 + b"e" * 11, limits)


def test_default_depth_bound_stops_deep_nesting_without_recursion_error() -> None:
    with pytest.raises(BencodeLimitError):
        decode(b"l" * 100_000 + b"e" * 100_000)


def test_value_count_and_length_are_bounded() -> None:
    with pytest.raises(BencodeLimitError):
        decode(b"l" + b"i1e" * 101 + b"e", Limits(max_values=100))
    with pytest.raises(BencodeLimitError):
        decode(b"4:spam", Limits(max_length=5))


def test_raw_bytes_of_a_nested_value_are_returned_exactly() -> None:
    data = b"d8:announce3:url4:infod4:name1:x6:lengthi1eee"
    with pytest.raises(BencodeNonCanonicalError):
        decode_with_raw(data, (b"info",))
    data = b"d8:announce3:url4:infod6:lengthi1e4:name1:xee"
    value, raw = decode_with_raw(data, (b"info",))
    assert raw == b"d6:lengthi1e4:name1:xe"
    assert isinstance(value, dict)
    assert decode_with_raw(data, (b"missing",))[1] is None
    _, raw_v = decode_with_raw(b"d1:ad1:vl1:xeee", (b"a", b"v"))
    assert raw_v == b"l1:xe"


def test_decode_prefix_reports_where_the_value_ends() -> None:
    value, end = decode_prefix(b"d8:msg_typei1e5:piecei0eeRAWDATA")
    assert value == {b"msg_type": 1, b"piece": 0}
    assert end == len(b"d8:msg_typei1e5:piecei0ee")


def test_encode_sorts_keys_as_raw_bytes_and_accepts_str() -> None:
    assert encode({"b": 1, "a": "é"}) == b"d1:a2:\xc3\xa91:bi1ee"
    assert encode({b"\xff": 1, b"a": 2}) == b"d1:ai2e1:\xffi1ee"


@pytest.mark.parametrize("bad", [1.5, None, True, {1: 2}, object()])
def test_encode_refuses_values_without_a_bencode_form(bad: object) -> None:
    with pytest.raises(BencodeError):
        bencode.encode(bad)  # type: ignore[arg-type]
