"""BEP 55 ``ut_holepunch``: message round trips, refused input, the relay's rule."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servent.proto.holepunch import (
    ErrorCode,
    HolepunchError,
    HolepunchMessage,
    MessageType,
    PeerView,
    decode,
    encode,
    relay_rendezvous,
)

A, B = ("11.77.0.2", 6881), ("11.88.0.2", 51413)


def test_round_trips_in_both_families() -> None:
    v4 = HolepunchMessage(MessageType.RENDEZVOUS, A)
    assert encode(v4) == bytes([0, 0, 11, 77, 0, 2]) + (6881).to_bytes(2, "big") + bytes(4)
    assert decode(encode(v4)) == v4
    v6 = HolepunchMessage(MessageType.ERROR, ("2001:db8::7", 1), ErrorCode.NO_SUPPORT)
    assert len(encode(v6)) == 24 and decode(encode(v6)) == v6


@pytest.mark.parametrize(
    "data",
    [
        b"",
        bytes(11),
        bytes([0, 1]) + bytes(10),  # IPv6 type in an IPv4-sized message
        bytes([3, 0]) + bytes(10),  # unknown message type
        bytes([0, 2]) + bytes(10),  # unknown address type
        bytes([2, 0]) + bytes(6) + (9).to_bytes(4, "big"),  # unknown error code
        bytes([2, 0]) + bytes(6),  # an error without its code
        bytes([0, 1]) + bytes(6),  # IPv6 type in a short IPv4-sized message
    ],
)
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(HolepunchError):
        decode(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_garbage_raises_only_holepunch_error(data: bytes) -> None:
    with contextlib.suppress(HolepunchError):
        message = decode(data)
        assert encode(message) == data


def test_the_relay_introduces_both_sides_at_the_addresses_it_sees() -> None:
    peers = {B: PeerView(("11.88.0.1", 40000), connected=True, supports_holepunch=True)}
    sent = relay_rendezvous(A, B, peers.get)
    assert sent == [
        (A, HolepunchMessage(MessageType.CONNECT, ("11.88.0.1", 40000))),
        (("11.88.0.1", 40000), HolepunchMessage(MessageType.CONNECT, A)),
    ]


@pytest.mark.parametrize(
    ("view", "code"),
    [
        (None, ErrorCode.NO_SUCH_PEER),
        (PeerView(B, connected=False, supports_holepunch=True), ErrorCode.NOT_CONNECTED),
        (PeerView(B, connected=True, supports_holepunch=False), ErrorCode.NO_SUPPORT),
    ],
)
def test_the_relay_refuses_with_the_right_code(view: PeerView | None, code: ErrorCode) -> None:
    assert relay_rendezvous(A, B, lambda _: view) == [
        (A, HolepunchMessage(MessageType.ERROR, B, code))
    ]
    assert relay_rendezvous(A, A, lambda _: view) == [
        (A, HolepunchMessage(MessageType.ERROR, A, ErrorCode.NO_SELF))
    ]


def test_messages_without_the_error_code_are_read_as_libtorrent_sends_them() -> None:
    short = bytes([1, 0, 11, 77, 0, 2]) + (6881).to_bytes(2, "big")
    assert decode(short) == HolepunchMessage(MessageType.CONNECT, ("11.77.0.2", 6881))
    v6 = bytes([0, 1]) + bytes(15) + b"\x01" + (80).to_bytes(2, "big")
    assert decode(v6) == HolepunchMessage(MessageType.RENDEZVOUS, ("::1", 80))
