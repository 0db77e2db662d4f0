"""KRPC envelope parsing and encoding (BEP 5), and the datagram decoder."""

from __future__ import annotations

import pytest

from servent.codec.bencode import DATAGRAM_LIMITS, decode, encode
from servent.errors import BencodeError, KrpcDecodeError
from servent.proto.dht.fastbencode import decode_datagram
from servent.proto.dht.krpc import (
    ERROR,
    QUERY,
    RESPONSE,
    encode_error,
    encode_query,
    encode_response,
    encode_value,
    parse_message,
)

ID = b"A" * 20


def test_query_round_trip_with_read_only_flag() -> None:
    data = encode_query(b"aa", b"find_node", {b"id": ID, b"target": b"B" * 20}, read_only=True)
    msg = parse_message(data)
    assert msg.kind is QUERY and msg.tid == b"aa" and msg.method == b"find_node"
    assert msg.sender_id == ID and msg.read_only
    assert msg.args[b"target"] == b"B" * 20


def test_response_carries_reflected_ip() -> None:
    data = encode_response(b"xy", {b"id": ID}, reflected_ip=bytes([1, 2, 3, 4, 0, 80]))
    msg = parse_message(data)
    assert msg.kind is RESPONSE and msg.sender_id == ID
    assert msg.reflected_ip == ("1.2.3.4", 80)


def test_error_round_trip() -> None:
    msg = parse_message(encode_error(b"zz", 203, "bad token"))
    assert msg.kind is ERROR and msg.error_code == 203 and msg.error_text == b"bad token"


def test_bep5_example_ping_parses() -> None:
    msg = parse_message(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe")
    assert msg.method == b"ping" and msg.sender_id == b"abcdefghij0123456789"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"le",
        b"i1e",
        b"d1:t2:aae",  # no y
        b"d1:t0:1:y1:qe",  # empty tid
        b"d1:t2:aa1:y1:xe",  # unknown type
        b"d1:rd2:id3:abce1:t2:aa1:y1:re",  # short id
        b"d1:t2:aa1:y1:re",  # no r
        b"d1:eli201ee1:t2:aa1:y1:fe",
        b"d1:e0:1:t2:aa1:y1:ee",  # e not a list
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe" + b"x",
    ],
)
def test_malformed_envelopes_raise_krpc_decode_error(data: bytes) -> None:
    with pytest.raises(KrpcDecodeError):
        parse_message(data)


def test_bad_query_keeps_the_transaction_id_for_the_error_reply() -> None:
    with pytest.raises(KrpcDecodeError) as info:
        parse_message(b"d1:ade1:q4:ping1:t2:aa1:y1:qe")  # no id
    assert info.value.tid == b"aa" and info.value.code == 203


def test_oversized_transaction_id_is_refused() -> None:
    with pytest.raises(KrpcDecodeError):
        parse_message(encode({b"t": b"x" * 17, b"y": b"q", b"q": b"ping", b"a": {b"id": ID}}))


def test_fast_encoder_matches_the_codec() -> None:
    value = {b"z": [1, -5, b"", {b"a": b"b"}], b"a": b"x" * 300, b"m": {}}
    assert encode_value(value) == encode(value)


@pytest.mark.parametrize(
    "data",
    [
        b"i0e", b"i-0e", b"i01e", b"i-12e", b"ie", b"0:", b"01:a", b"4:abc", b"le", b"de",
        b"d0:i1ee", b"d1:ai1e1:ai2ee", b"d1:bi1e1:ai2ee", b"l" * 16 + b"e" * 16,
        b"l" * 17 + b"e" * 17, b"i1ex", b"d1:a", b"l1:a", b"x", b"i" + b"9" * 40 + b"e",
        b"d1:ali1ei2eee", b"di1ei2ee",
    ],
)  # fmt: skip
def test_datagram_decoder_agrees_with_the_codec(data: bytes) -> None:
    try:
        expected = decode(data, DATAGRAM_LIMITS)
    except BencodeError:
        with pytest.raises(KrpcDecodeError):
            decode_datagram(data)
    else:
        assert decode_datagram(data) == expected


def test_hand_written_encoders_match_the_codec() -> None:
    args = {b"id": ID, b"target": b"y" * 20, b"want": [b"n4", b"n6"], b"port": 5}
    assert encode_query(b"aa", b"find_node", args, read_only=True, version=b"SV01") == encode(
        {b"t": b"aa", b"y": b"q", b"q": b"find_node", b"a": args, b"ro": 1, b"v": b"SV01"}
    )
    values = {b"id": ID, b"nodes": b"n" * 26, b"values": [b"p" * 6], b"interval": 60}
    assert encode_response(b"bb", values, reflected_ip=b"i" * 6, version=b"SV01") == encode(
        {b"t": b"bb", b"y": b"r", b"r": values, b"ip": b"i" * 6, b"v": b"SV01"}
    )
