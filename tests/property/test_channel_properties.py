"""Hypothesis: the node channel parser survives hostile bytes and any chunking.

Hostile input may only close the connection with a ChannelError recorded on
it; an exception out of ``receive_data`` or an unbounded buffer is a bug.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from servent.proto.channel import (
    MAGIC,
    ChannelConnection,
    ChannelError,
    ConnectionClosed,
    HandshakeComplete,
    LocalKeys,
    MessageReceived,
    Phase,
)
from servent.proto.channel.frames import MAX_CIPHERTEXT

ECHO = "servent/echo/1"
CLIENT_KEYS = LocalKeys.create(Ed25519PrivateKey.generate())
SERVER_KEYS = LocalKeys.create(Ed25519PrivateKey.generate())
BOUND = MAX_CIPHERTEXT + 4


def _drain(conn: ChannelConnection) -> list[object]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def _open_pair() -> tuple[ChannelConnection, ChannelConnection]:
    client = ChannelConnection(CLIENT_KEYS, initiator=True, now=0.0)
    server = ChannelConnection(SERVER_KEYS, initiator=False, now=0.0, protocols={ECHO})
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    server.receive_data(client.data_to_send(), 0.0)
    assert client.phase is server.phase is Phase.OPEN
    _drain(client)
    _drain(server)
    return client, server


def _check_survived(conn: ChannelConnection, fed: int, seen: list[object] | None = None) -> None:
    """Closed with the error recorded (once), or waiting with a bounded buffer."""
    events = (seen or []) + _drain(conn)
    assert not any(isinstance(e, MessageReceived) for e in events)
    closed = [e for e in events if isinstance(e, ConnectionClosed)]
    if conn.phase is Phase.CLOSED:
        assert len(closed) == 1 and isinstance(closed[0].error, ChannelError)
    else:
        assert closed == []
    assert len(conn._in) <= min(fed, BOUND)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.booleans())
def test_random_bytes_on_a_fresh_connection(data: bytes, with_magic: bool) -> None:
    server = ChannelConnection(SERVER_KEYS, initiator=False, now=0.0)
    fed = (MAGIC if with_magic else b"") + data
    server.receive_data(fed, 0.0)
    _check_survived(server, len(fed))
    assert server.phase is not Phase.OPEN
    client = ChannelConnection(CLIENT_KEYS, initiator=True, now=0.0)
    client.receive_data(fed, 0.0)
    _check_survived(client, len(fed))
    assert client.phase is not Phase.OPEN


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=8))
def test_random_bytes_after_the_handshake(chunks: list[bytes]) -> None:
    _, server = _open_pair()
    fed = 0
    seen: list[object] = []
    for chunk in chunks:
        fed += len(chunk)
        server.receive_data(chunk, 0.0)
        seen += _drain(server)
        _check_survived(server, fed, seen)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_single_bit_flip_in_the_handshake_fails_it(data: st.DataObject) -> None:
    client = ChannelConnection(CLIENT_KEYS, initiator=True, now=0.0)
    server = ChannelConnection(SERVER_KEYS, initiator=False, now=0.0)
    flights = [client.data_to_send()]
    which = data.draw(st.integers(0, 2), label="message")
    for step in range(3):
        wire = bytearray(flights[-1])
        if step == which:
            bit = data.draw(st.integers(0, len(wire) * 8 - 1), label="bit")
            wire[bit // 8] ^= 1 << (bit % 8)
        receiver, _sender = (server, client) if step % 2 == 0 else (client, server)
        receiver.receive_data(bytes(wire), 0.0)
        flights.append(receiver.data_to_send())
        if not flights[-1]:
            break
    assert not (client.phase is Phase.OPEN and server.phase is Phase.OPEN)
    _drain(client)
    _drain(server)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 300), max_size=30), st.lists(st.binary(max_size=300), max_size=5))
def test_any_chunking_gives_the_same_events(cuts: list[int], messages: list[bytes]) -> None:
    client = ChannelConnection(CLIENT_KEYS, initiator=True, now=0.0)
    server = ChannelConnection(SERVER_KEYS, initiator=False, now=0.0, protocols={ECHO})
    server.receive_data(client.data_to_send(), 0.0)
    hello = server.data_to_send()
    position = 0
    for cut in cuts:  # the server's answer, in arbitrary pieces
        client.receive_data(hello[position : position + cut], 0.0)
        position += cut
    client.receive_data(hello[position:], 0.0)
    assert isinstance(_drain(client)[0], HandshakeComplete)
    stream = client.open_stream(ECHO)
    for message in messages:
        client.send_message(stream, message)
    wire = client.data_to_send()
    position = 0
    for cut in cuts:
        server.receive_data(wire[position : position + cut], 0.0)
        position += cut
    server.receive_data(wire[position:], 0.0)
    received = [e.data for e in _drain(server) if isinstance(e, MessageReceived)]
    assert received == messages and server.phase is Phase.OPEN
