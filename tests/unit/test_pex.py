"""ut_pex codec bounds and the once-a-minute, 50-peer message state."""

from __future__ import annotations

import pytest

from servent.codec import bencode
from servent.errors import PexError
from servent.proto.pex import (
    FLAG_SEED,
    MAX_ADDED,
    PEX_INTERVAL,
    PexMessage,
    PexState,
    decode_pex,
    encode_pex,
)


def addr(i: int) -> tuple[str, int]:
    return (f"10.0.{i >> 8}.{i & 255}", 1000 + i)


def test_round_trip_with_ipv4_ipv6_and_flags() -> None:
    msg = PexMessage(added=((addr(1), FLAG_SEED), (("::1", 5), 0)), dropped=(addr(2), ("::2", 6)))
    assert decode_pex(encode_pex(msg)) == msg


def test_messages_are_at_most_once_a_minute_and_carry_at_most_50_added() -> None:
    state = PexState(now=0)
    state.set_connected((addr(i), 0) for i in range(120))
    first = decode_pex(state.build_message(0) or b"")
    assert len(first.added) == MAX_ADDED
    assert state.build_message(PEX_INTERVAL - 1) is None
    second = decode_pex(state.build_message(PEX_INTERVAL) or b"")
    assert not set(first.added) & set(second.added)
    state.set_connected([])
    state.build_message(2 * PEX_INTERVAL)
    dropped = decode_pex(state.build_message(3 * PEX_INTERVAL) or b"").dropped
    assert len(dropped) == 50  # the 100 advertised peers go in batches of 50


def test_nothing_changed_sends_nothing() -> None:
    state = PexState(now=0)
    assert state.build_message(0) is None


def test_a_flood_of_added_peers_is_cut_to_the_bound() -> None:
    payload = bencode.encode(
        {b"added": b"".join(bytes([10, 0, i >> 8, i & 255, 0, 1]) for i in range(2000))}
    )
    assert len(decode_pex(payload).added) == MAX_ADDED


def test_messages_arriving_too_often_are_refused() -> None:
    state = PexState(now=0)
    state.receive(encode_pex(PexMessage()), 0)
    with pytest.raises(PexError, match="flood"):
        state.receive(encode_pex(PexMessage()), 5)


@pytest.mark.parametrize(
    "payload",
    [
        b"x",
        b"le",
        bencode.encode({b"added": 5}),
        bencode.encode({b"added": b"12345"}),
        b"d" * 20000,
    ],
)
def test_malformed_payloads_raise_pex_error(payload: bytes) -> None:
    with pytest.raises(PexError):
        decode_pex(payload)
