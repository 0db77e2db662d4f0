"""A BEP 10 handshake sent again on an open connection: merged, bounded, hostile repeats."""

from __future__ import annotations

import pytest

from peerwire_pair import exchange_handshakes
from servent.codec.bencode import BValue, encode
from servent.errors import MalformedMessageError
from servent.proto.peerwire import (
    ConnectionConfig,
    Event,
    Extended,
    ExtensionHandshakeReceived,
    ExtensionRegistry,
    PeerConnection,
    encode_message,
)
from servent.proto.peerwire.extensions import MAX_MERGED_FIELDS, MAX_MERGED_NAMES

INFO_HASH = b"\x11" * 20
KEY_A = bytes([1]) * 32
KEY_B = bytes([2]) * 32


def opened() -> PeerConnection:
    """A connection (ours) past the BitTorrent handshake, with BEP 10 on both sides."""
    registry = ExtensionRegistry()
    registry.register("sv_nodes", 5)
    config = ConnectionConfig(enable_extensions=True)
    ours = PeerConnection(
        peer_id=b"-SV0001-ours00000000", info_hash=INFO_HASH, initiator=True,
        config=config, now=0.0, extensions=registry,
    )  # fmt: skip
    theirs = PeerConnection(
        peer_id=b"-SV0001-theirs000000", info_hash=INFO_HASH, initiator=False,
        config=config, now=0.0, extensions=registry,
    )  # fmt: skip
    return exchange_handshakes(ours, theirs)


def handshake_from_peer(conn: PeerConnection, body: dict[bytes, BValue]) -> list[Event]:
    conn.receive_data(encode_message(Extended(0, encode(body))), 1.0)
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def test_a_second_handshake_updates_the_first_as_bep_10_says() -> None:
    conn = opened()
    first = {b"m": {b"sv_nodes": 4, b"ut_pex": 1}, b"v": b"servent", b"sv_node": {b"k": KEY_A}}
    handshake_from_peer(conn, first)
    (event,) = handshake_from_peer(conn, {b"m": {b"ut_pex": 0}, b"sv_node": {b"k": KEY_B}})
    assert isinstance(event, ExtensionHandshakeReceived)
    merged = event.handshake
    assert dict(merged.extensions) == {"sv_nodes": 4}  # ut_pex removed (id 0), sv_nodes kept
    assert merged.client == "servent"  # a key not given again keeps its value
    assert merged.fields[b"sv_node"] == {b"k": KEY_B}  # a key given again is replaced
    assert conn.remote_extensions == merged
    assert conn.remote_supports("sv_nodes") and not conn.remote_supports("ut_pex")


def test_a_later_handshake_may_change_an_extension_id() -> None:
    conn = opened()
    handshake_from_peer(conn, {b"m": {b"sv_nodes": 4}})
    handshake_from_peer(conn, {b"m": {b"sv_nodes": 9}})
    conn.send_extension("sv_nodes", b"x")
    assert conn.data_to_send().endswith(bytes([20, 9]) + b"x")  # sent on the new id


def test_repeating_the_same_handshake_keeps_the_state_bounded() -> None:
    conn = opened()
    body: dict[bytes, BValue] = {b"m": {b"sv_nodes": 4}, b"sv_node": {b"k": KEY_A}, b"p": 6881}
    for _ in range(500):
        (event,) = handshake_from_peer(conn, body)
        assert isinstance(event, ExtensionHandshakeReceived)
    assert conn.remote_extensions is not None
    assert len(conn.remote_extensions.fields) == 3
    assert dict(conn.remote_extensions.extensions) == {"sv_nodes": 4}


def test_handshakes_naming_new_extensions_each_time_cost_the_connection() -> None:
    conn = opened()
    with pytest.raises(MalformedMessageError, match="extensions"):
        for batch in range(MAX_MERGED_NAMES):
            names: dict[bytes, BValue] = {f"x{batch}_{i}".encode(): 1 + i for i in range(16)}
            handshake_from_peer(conn, {b"m": names})
    assert batch * 16 <= MAX_MERGED_NAMES  # refused as soon as the union passed the bound


def test_handshakes_giving_new_keys_each_time_cost_the_connection() -> None:
    conn = opened()
    with pytest.raises(MalformedMessageError, match="keys"):
        for batch in range(MAX_MERGED_FIELDS):
            handshake_from_peer(conn, {f"k{batch}_{i}".encode(): i for i in range(16)})
    assert batch * 16 <= MAX_MERGED_FIELDS


def test_one_large_first_handshake_is_still_accepted() -> None:
    conn = opened()
    count = MAX_MERGED_NAMES + 50
    names: dict[bytes, BValue] = {f"n{i}".encode(): 1 + i % 255 for i in range(count)}
    (event,) = handshake_from_peer(conn, {b"m": names})
    assert isinstance(event, ExtensionHandshakeReceived)
    assert len(event.handshake.extensions) == MAX_MERGED_NAMES + 50
    (again,) = handshake_from_peer(conn, {b"m": names})  # the same again: no growth
    assert isinstance(again, ExtensionHandshakeReceived)
