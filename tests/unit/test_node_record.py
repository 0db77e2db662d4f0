"""The address record value (docs/node-channel.md section 9): round trip, bounds, hostile values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bencode import BValue
from servent.codec.node_record import (
    MAX_ADDRESSES,
    NodeRecord,
    NodeRecordError,
    decode_node_record,
    encode_node_record,
)
from servent.proto.dht.items import MAX_VALUE_SIZE
from servent.proto.dht.krpc import encode_value


def test_round_trip_with_ipv4_ipv6_and_a_name() -> None:
    record = NodeRecord((("203.0.113.5", 6881), ("2001:db8::1", 51413)), 1_700_000_000, "Ann")
    assert decode_node_record(encode_node_record(record)) == record
    nameless = NodeRecord((("127.0.0.1", 1),), 0)
    assert decode_node_record(encode_node_record(nameless)) == nameless


def test_the_largest_record_fits_a_bep44_item() -> None:
    addresses = tuple((f"2001:db8::{i}", 65535) for i in range(MAX_ADDRESSES))
    record = NodeRecord(addresses, 2**40, "é" * 32)  # 64 UTF-8 bytes
    assert len(encode_value(encode_node_record(record))) <= MAX_VALUE_SIZE


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (NodeRecord((), 1), "1..8 addresses"),
        (NodeRecord((("1.2.3.4", 1),) * 9, 1), "1..8 addresses"),
        (NodeRecord((("not an ip", 1),), 1), "cannot publish"),
        (NodeRecord((("1.2.3.4", 70000),), 1), "cannot publish"),
        (NodeRecord((("1.2.3.4", 1),), 1, "x" * 65), "longer than 64"),
    ],
)
def test_records_that_could_not_be_read_back_are_not_encoded(
    record: NodeRecord, message: str
) -> None:
    with pytest.raises(NodeRecordError, match=message):
        encode_node_record(record)


GOOD: dict[bytes, BValue] = {b"v": 1, b"t": 5, b"a": [bytes([127, 0, 0, 1, 0, 80])]}


@pytest.mark.parametrize(
    "value",
    [
        b"not a dict",
        {**GOOD, b"v": 2},
        {**GOOD, b"t": -1},
        {**GOOD, b"t": b"5"},
        {**GOOD, b"a": []},
        {**GOOD, b"a": [b"12345"]},
        {**GOOD, b"a": [7]},
        {**GOOD, b"a": b"\x7f\x00\x00\x01\x00\x50"},
        {**GOOD, b"n": b"\xff\xfe"},
        {**GOOD, b"n": b"x" * 65},
    ],
)
def test_hostile_values_are_refused(value: BValue) -> None:
    with pytest.raises(NodeRecordError):
        decode_node_record(value)


def test_unknown_keys_are_ignored() -> None:
    assert decode_node_record({**GOOD, b"zz": b"later"}).addresses == (("127.0.0.1", 80),)


values = st.recursive(
    st.integers(-5, 2**64) | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from([b"a", b"n", b"t", b"v", b"x"]), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_value_decodes_or_raises_node_record_error(value: BValue) -> None:
    try:
        record = decode_node_record(value)
    except NodeRecordError:
        return
    assert 1 <= len(record.addresses) <= MAX_ADDRESSES
