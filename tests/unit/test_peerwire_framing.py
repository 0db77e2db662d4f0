"""FrameReader and PeerConnection.borrow_input: zero-copy receive gives the same events.

The driver reuses one read buffer for every read (as PeerSession does), so a
borrowed view that outlived its read would show the next read's bytes: each
test overwrites the buffer after draining and checks what was kept.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servent.errors import MessageTooLargeError
from servent.proto.peerwire import (
    ConnectionConfig,
    Event,
    Have,
    HaveAll,
    PeerConnection,
    Piece,
    Request,
    Unchoke,
    encode_message,
)
from servent.proto.peerwire.framing import FrameReader

INFO_HASH = b"\x33" * 20
CLIENT_ID = b"-SV0001-client000000"
SERVER_ID = b"-SV0001-server000000"
BLOCK = 16384


def open_pair(borrow: bool) -> tuple[PeerConnection, PeerConnection]:
    client = PeerConnection(
        peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, num_pieces=64, now=0.0
    )
    server = PeerConnection(
        peer_id=SERVER_ID, info_hash=INFO_HASH, initiator=False, num_pieces=64, now=0.0
    )
    client.borrow_input = borrow
    server.receive_data(client.data_to_send())
    assert server.next_event() is not None  # HandshakeReceived
    client.receive_data(server.data_to_send())
    assert client.next_event() is not None
    return client, server


def served_stream(
    client: PeerConnection, server: PeerConnection, blocks: int
) -> tuple[bytes, bytes]:
    """The server's bytes answering ``blocks`` requests (and the payload they carry)."""
    payload = random.Random(blocks).randbytes(blocks * BLOCK)
    server.send(HaveAll())
    server.send(Unchoke())
    for i in range(blocks):
        client.send(Request(i // 4, (i % 4) * BLOCK, BLOCK))
    server.receive_data(client.data_to_send())
    while server.next_event() is not None:
        pass
    for i in range(blocks):
        server.send(Piece(i // 4, (i % 4) * BLOCK, payload[i * BLOCK : (i + 1) * BLOCK]))
        if i % 5 == 0:
            server.send(Have(i // 4))
    return server.data_to_send(), payload


def feed_like_a_driver(conn: PeerConnection, stream: bytes, cuts: list[int]) -> list[Event]:
    """Feed ``stream`` through one reused buffer, cut at ``cuts``; keep copies of blocks."""
    shared = bytearray(max(1, len(stream)))
    events: list[Event] = []
    at = 0
    for end in [*sorted(c for c in set(cuts) if c < len(stream)), len(stream)]:
        if end <= at:
            continue
        size = end - at
        shared[:size] = stream[at:end]
        conn.receive_data(memoryview(shared)[:size], 1.0)
        while (event := conn.next_event()) is not None:
            if isinstance(event, Piece):
                event = Piece(event.index, event.begin, bytes(event.block))
            events.append(event)
        shared[:] = b"\xee" * len(shared)  # the next read overwrites the buffer
        at = end
    return events


def test_borrowed_blocks_are_views_into_the_drivers_buffer() -> None:
    client, server = open_pair(borrow=True)
    stream, payload = served_stream(client, server, 4)
    client.receive_data(memoryview(bytearray(stream)), 1.0)
    pieces = []
    while (event := client.next_event()) is not None:
        if isinstance(event, Piece):
            assert isinstance(event.block, memoryview)
            pieces.append(bytes(event.block))
    assert b"".join(pieces) == payload


def test_without_borrowing_blocks_are_bytes() -> None:
    client, server = open_pair(borrow=False)
    stream, _ = served_stream(client, server, 2)
    client.receive_data(stream, 1.0)
    blocks = [e.block for e in iter(client.next_event, None) if isinstance(e, Piece)]
    assert blocks and all(type(b) is bytes for b in blocks)


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=12 * (BLOCK + 13) + 200), max_size=40))
def test_borrowing_yields_the_same_events_for_any_read_sizes(cuts: list[int]) -> None:
    results = []
    for borrow in (False, True):
        client, server = open_pair(borrow)
        stream, payload = served_stream(client, server, 12)
        events = feed_like_a_driver(client, stream, cuts)
        blocks = b"".join(e.block for e in events if isinstance(e, Piece))  # type: ignore[misc]
        assert blocks == payload
        results.append(events)
    assert results[0] == results[1]


def test_reader_bounds_what_it_holds_in_either_mode() -> None:
    for borrow in (False, True):
        reader = FrameReader(100, borrow=borrow)
        reader.feed(b"\x00\x00\x00\x50" + b"x" * 60)  # an incomplete frame of 80 bytes
        assert reader.next_frame(1000) is None
        with pytest.raises(MessageTooLargeError):
            reader.feed(b"y" * 50)


def test_reader_checks_the_length_before_the_body_arrives() -> None:
    reader = FrameReader(1 << 20, borrow=True)
    reader.feed(b"\x00\x10\x00\x00\x07")  # claims 1 MiB
    with pytest.raises(MessageTooLargeError):
        reader.next_frame(256 * 1024)


def test_oversized_message_closes_a_borrowing_connection() -> None:
    client, _ = open_pair(borrow=True)
    client.receive_data(b"\x00\x10\x00\x00\x07" + bytes(100), 1.0)
    with pytest.raises(MessageTooLargeError):
        client.next_event()


def test_keep_alives_and_frames_split_across_reads() -> None:
    frames = encode_message(Unchoke()) + b"\x00\x00\x00\x00" + encode_message(Have(3))
    reader = FrameReader(1 << 20, borrow=True)
    bodies = []
    shared = bytearray(len(frames))
    for i in range(len(frames)):
        shared[0] = frames[i]
        reader.feed(memoryview(shared)[:1])
        while (frame := reader.next_frame(1000)) is not None:
            buf, start, end = frame
            bodies.append(bytes(buf[start:end]))
    assert bodies == [b"\x01", b"", b"\x04\x00\x00\x00\x03"]


def test_connection_config_default_does_not_borrow() -> None:
    conn = PeerConnection(
        peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, now=0.0, config=ConnectionConfig()
    )
    assert conn.borrow_input is False


def test_bytes_arriving_before_accept_survive_the_drivers_next_read() -> None:
    """An incoming connection waits for accept(); what came meanwhile must be kept."""
    client = PeerConnection(
        peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, num_pieces=64, now=0.0
    )
    server = PeerConnection(peer_id=SERVER_ID, info_hash=None, initiator=False, now=0.0)
    server.borrow_input = True
    shared = bytearray(1024)

    def read(data: bytes) -> list[Event]:
        shared[: len(data)] = data
        server.receive_data(memoryview(shared)[: len(data)], 1.0)
        events = list(iter(server.next_event, None))
        shared[:] = b"\xee" * len(shared)  # the buffer is reused for the next read
        return events

    assert len(read(client.data_to_send())) == 1  # HandshakeReceived; awaiting accept
    assert read(encode_message(Have(5)) + encode_message(Have(6))) == []
    server.accept(INFO_HASH, now=1.0, num_pieces=64)
    assert list(iter(server.next_event, None))[-2:] == [Have(5), Have(6)]
