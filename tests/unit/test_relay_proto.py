"""The relay's control codec, admission rules and the address record's relays."""

from __future__ import annotations

import pytest

from servent.codec.node_record import (
    NodeRecord,
    NodeRecordError,
    RelayRef,
    decode_node_record,
    encode_node_record,
)
from servent.proto.relay import (
    INTRODUCTION_INTERVAL,
    MAX_CONTROL,
    RelayBook,
    RelayErrorCode,
    RelayMessageError,
    answer,
    decode_control,
    encode_control,
    field_address,
    field_key,
    field_op,
    field_port,
    read_answer,
)

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def test_answers_round_trip() -> None:
    assert read_answer(answer(True)) is None
    assert read_answer(answer(False, RelayErrorCode.FULL)) is RelayErrorCode.FULL
    assert read_answer(encode_control({b"ok": 0, b"error": 99})) is RelayErrorCode.REFUSED


@pytest.mark.parametrize(
    "data",
    [b"x" * (MAX_CONTROL + 1), b"garbage", b"li1ee", encode_control({b"ok": 2})],
)
def test_hostile_answers_are_refused(data: bytes) -> None:
    with pytest.raises(RelayMessageError):
        read_answer(data)


def test_fields_are_read() -> None:
    message = decode_control(encode_control({b"op": b"connect", b"to": B, b"port": 80}))
    assert field_op(message) == "connect" and field_key(message, b"to") == B
    assert field_port(message) == 80


@pytest.mark.parametrize(
    ("reader", "message"),
    [
        (field_op, {b"op": b"fly"}),
        (lambda m: field_key(m, b"to"), {b"to": b"short"}),
        (field_port, {b"port": 0}),
        (field_port, {b"port": True}),
        (field_address, {b"addr": b"12345"}),
        (field_address, {b"addr": b"\x0b\x00\x00\x01\x00\x00"}),  # port 0
    ],
)
def test_bad_fields_are_refused(reader: object, message: dict[bytes, object]) -> None:
    with pytest.raises(RelayMessageError):
        reader(message)  # type: ignore[operator]


def test_the_book_bounds_reservations_circuits_and_introductions() -> None:
    off = RelayBook()
    assert off.reserve(A) is RelayErrorCode.RELAY_OFF
    book = RelayBook(enabled=True, max_circuits=1, max_reservations=1)
    assert book.reserve(A) is None and book.reserve(A) is None  # again: still one
    assert book.reserve(B) is RelayErrorCode.FULL
    assert book.open_circuit(B, B) is RelayErrorCode.SELF
    assert book.open_circuit(B, C) is RelayErrorCode.NO_SUCH_NODE
    assert book.open_circuit(B, A) is None
    assert book.open_circuit(C, A) is RelayErrorCode.FULL
    book.close_circuit()
    assert book.open_circuit(C, A) is None
    book.release(A)
    assert A not in book.reservations
    assert book.introduce(A, B, target_connected=False, now=0) is RelayErrorCode.NO_SUCH_NODE
    assert book.introduce(A, B, target_connected=True, now=0) is None
    book.introduction_done()
    assert book.introduce(A, B, target_connected=True, now=1) is RelayErrorCode.FULL
    assert book.introduce(A, B, target_connected=True, now=INTRODUCTION_INTERVAL) is None


def test_a_record_carries_its_relays() -> None:
    relay = RelayRef(C, ("11.77.0.2", 6881))
    record = NodeRecord((("11.78.0.1", 7000),), 5, "n", (relay,))
    assert decode_node_record(encode_node_record(record)) == record
    plain = NodeRecord((("11.78.0.1", 7000),), 5)
    assert decode_node_record(encode_node_record(plain)).relays == ()
    value = encode_node_record(plain)
    for bad in (b"short", [b"x" * 37], [C + b"\0" * 6] * 3):
        with pytest.raises(NodeRecordError):
            decode_node_record({**value, b"r": bad})
