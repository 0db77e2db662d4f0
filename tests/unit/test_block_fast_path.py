"""The leecher's per-block fast path: block sink, batched requests, allocation-free picker.

These replace, on the download hot path, a ``Piece`` event per block, one
generic ``send`` per request and a ``Request``/``BlockOutcome`` pair per
block; each must keep the checks and results of the path it replaces.
"""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from peerwire_pair import open_unchoked
from servent.errors import MalformedMessageError, UnexpectedMessageError
from servent.net.peer_session import PeerSession
from servent.proto.peerwire import (
    BlocksReceived,
    Cancel,
    ConnectionConfig,
    ConnectionState,
    Event,
    Have,
    PeerConnection,
    Piece,
    Request,
    encode_message,
)
from servent.proto.picker import PiecePicker

# Every test runs on both receive paths (C where built, and Python).
pytestmark = pytest.mark.usefixtures("both_scan_paths")

INFO_HASH = b"\x11" * 20
BLOCK = 16384
NUM_PIECES = 8


def open_pair(now: float = 0.0) -> tuple[PeerConnection, PeerConnection]:
    return open_unchoked(NUM_PIECES, now=now)


def drain(conn: PeerConnection) -> list[Event]:
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


# ------------------------------------------------------------- batched requests


def test_send_requests_encodes_like_one_send_per_request() -> None:
    batched, _ = open_pair()
    single, _ = open_pair()
    requests = [Request(i // 4, (i % 4) * BLOCK, BLOCK) for i in range(10)]
    batched.send_requests(requests)
    for request in requests:
        single.send(request)
    assert batched.data_to_send() == single.data_to_send()
    assert batched.outstanding_requests == single.outstanding_requests == tuple(requests)


def test_send_requests_reach_the_seeder_as_requests() -> None:
    leecher, seeder = open_pair()
    requests = [Request(3, 0, BLOCK), Request(3, BLOCK, 100)]
    leecher.send_requests(requests)
    seeder.receive_data(leecher.data_to_send(), 1.0)
    assert drain(seeder) == requests


def test_send_requests_on_a_closed_connection_sends_nothing() -> None:
    leecher, _ = open_pair()
    leecher.close()
    leecher.send_requests([Request(0, 0, BLOCK)])
    assert leecher.data_to_send() == b""


def test_send_requests_before_the_handshake_is_an_error() -> None:
    conn = PeerConnection(peer_id=b"L" * 20, info_hash=INFO_HASH, initiator=True, now=0.0)
    with pytest.raises(RuntimeError):
        conn.send_requests([Request(0, 0, BLOCK)])


# ------------------------------------------------------------------ block sink


def test_block_sink_gets_blocks_with_their_request_time_and_no_piece_event() -> None:
    leecher, seeder = open_pair()
    got: list[tuple[int, int, bytes, float | None]] = []
    leecher.block_sink = lambda i, b, data, at: got.append((i, b, bytes(data), at))
    leecher.receive_data(b"\0\0\0\0", 1.5)  # a keep-alive: the time is now 1.5
    assert drain(leecher) == []
    leecher.send_requests([Request(1, 0, BLOCK), Request(1, BLOCK, BLOCK)])
    seeder.receive_data(leecher.data_to_send(), 1.5)
    for request in drain(seeder):
        assert isinstance(request, Request)
        seeder.send(Piece(request.index, request.begin, bytes([request.begin // BLOCK]) * BLOCK))
    seeder.send(Have(5))
    leecher.receive_data(seeder.data_to_send(), 2.0)
    assert drain(leecher) == [Have(5)]
    assert got == [(1, 0, b"\x00" * BLOCK, 1.5), (1, BLOCK, b"\x01" * BLOCK, 1.5)]
    assert leecher.outstanding_count == 0
    assert leecher.payload_received == 2 * BLOCK


def test_block_sink_still_refuses_an_unsolicited_block() -> None:
    leecher, _ = open_pair()
    leecher.block_sink = lambda *args: pytest.fail("an unsolicited block reached the sink")
    leecher.receive_data(encode_message(Piece(2, 0, b"x" * BLOCK)), 1.0)
    with pytest.raises(UnexpectedMessageError):
        drain(leecher)
    assert leecher.state is ConnectionState.CLOSED


def test_block_sink_still_refuses_an_index_out_of_range() -> None:
    leecher, _ = open_pair()
    leecher.block_sink = lambda *args: pytest.fail("a bad block reached the sink")
    leecher.receive_data(encode_message(Piece(NUM_PIECES, 0, b"x" * 10)), 1.0)
    with pytest.raises(MalformedMessageError):
        drain(leecher)


def test_a_sink_that_closes_the_connection_stops_parsing() -> None:
    leecher, seeder = open_pair()
    got: list[int] = []

    def sink(index: int, begin: int, block: bytes | memoryview, at: float | None) -> None:
        got.append(begin)
        leecher.close()

    leecher.block_sink = sink
    leecher.send_requests([Request(0, 0, BLOCK), Request(0, BLOCK, BLOCK)])
    seeder.receive_data(leecher.data_to_send(), 1.0)
    for request in drain(seeder):
        assert isinstance(request, Request)
        seeder.send(Piece(request.index, request.begin, b"y" * BLOCK))
    leecher.receive_data(seeder.data_to_send(), 1.0)
    assert drain(leecher) == []
    assert got == [0]


def test_a_late_block_of_a_cancelled_request_has_no_request_time() -> None:
    conn = PeerConnection(
        peer_id=b"L" * 20,
        info_hash=INFO_HASH,
        initiator=True,
        now=0.0,
        num_pieces=NUM_PIECES,
        config=ConnectionConfig(enable_fast=False),
    )
    seeder = PeerConnection(
        peer_id=b"S" * 20, info_hash=INFO_HASH, initiator=False, now=0.0, num_pieces=NUM_PIECES
    )
    seeder.receive_data(conn.data_to_send(), 0.0)
    drain(seeder)
    conn.receive_data(seeder.data_to_send(), 0.0)
    drain(conn)
    got: list[float | None] = []
    conn.block_sink = lambda i, b, data, at: got.append(at)
    conn.send_requests([Request(0, 0, BLOCK)])
    conn.send(Cancel(0, 0, BLOCK))  # without BEP 6 a late piece is still legal
    conn.receive_data(encode_message(Piece(0, 0, b"z" * BLOCK)), 1.0)
    assert drain(conn) == []
    assert got == [None]


# --------------------------------------------------------------------- picker


def test_picker_block_received_matches_on_block_received() -> None:
    picker = PiecePicker(2, 2 * BLOCK, 3 * BLOCK, rng=random.Random(7))
    picker.add_peer("a", None)
    requests = picker.pick("a", 10)
    assert len(requests) == 3
    first = picker.block_received("a", requests[0].index, requests[0].begin, requests[0].length)
    assert first.accepted and not first.piece_complete and first.cancels == ()
    again = picker.block_received("a", requests[0].index, requests[0].begin, requests[0].length)
    assert not again.accepted
    assert not picker.block_received("a", requests[1].index, requests[1].begin, 5).accepted
    assert not picker.block_received("a", requests[1].index, 7, BLOCK).accepted
    done = [picker.on_block_received("a", r) for r in requests[1:]]
    assert sum(outcome.piece_complete for outcome in done) == 2  # both pieces
    assert all(outcome.accepted for outcome in done)


def test_picker_block_received_names_endgame_duplicates_to_cancel() -> None:
    picker = PiecePicker(1, BLOCK, BLOCK, rng=random.Random(1))
    picker.add_peer("a", None)
    picker.add_peer("b", None)
    (request,) = picker.pick("a", 1)
    assert picker.pick("b", 1) == [request]  # endgame: the same block twice
    outcome = picker.block_received("b", request.index, request.begin, request.length)
    assert outcome.accepted and outcome.piece_complete
    assert outcome.cancels == (("a", request),)
    assert picker.requests_of("a") == []


# --------------------------------------------------------- driver: stream order


class RecordingHandler:
    """A handler that records what it is handed, in order (blocks copied: views die)."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    def peer_events(self, session: PeerSession, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, BlocksReceived):
                for index, begin, block, requested_at in event.blocks:
                    assert requested_at is not None
                    self.seen.append(("block", index, begin, bytes(block[:1])))
            else:
                self.seen.append(event)

    def peer_closed(self, session: PeerSession) -> None:
        self.seen.append("closed")


async def test_peer_session_hands_blocks_and_events_over_in_stream_order() -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    leecher, seeder = open_pair(loop.time())
    handler = RecordingHandler()
    try:
        transport, session = await loop.create_connection(
            lambda: PeerSession(leecher, handler), sock=ours
        )
        leecher.send_requests([Request(0, 0, BLOCK), Request(0, BLOCK, BLOCK)])
        seeder.receive_data(leecher.data_to_send(), loop.time())
        drain(seeder)
        seeder.send(Have(1))
        seeder.send(Piece(0, 0, b"a" * BLOCK))
        seeder.send(Have(2))
        seeder.send(Piece(0, BLOCK, b"b" * BLOCK))
        theirs.setblocking(False)
        await loop.sock_sendall(theirs, seeder.data_to_send())
        expected = [Have(1), ("block", 0, 0, b"a"), Have(2), ("block", 0, BLOCK, b"b")]
        deadline = loop.time() + 5.0
        while len(handler.seen) < len(expected):
            assert loop.time() < deadline, handler.seen
            await asyncio.sleep(0.01)  # polling a condition with a deadline
        assert handler.seen == expected
        session.close("test over")
        await asyncio.wait_for(session.wait_closed(), 5.0)
        assert transport.is_closing()
    finally:
        theirs.close()


def test_pick_blocks_gives_the_same_blocks_as_pick() -> None:
    as_requests = PiecePicker(3, 4 * BLOCK, 10 * BLOCK + 5, rng=random.Random(3))
    as_keys = PiecePicker(3, 4 * BLOCK, 10 * BLOCK + 5, rng=random.Random(3))
    for picker in (as_requests, as_keys):
        picker.add_peer("a", None)
    requests = as_requests.pick("a", 20)
    keys = as_keys.pick_blocks("a", 20)
    assert [(r.index, r.begin, r.length) for r in requests] == keys
    assert len(keys) == 11  # every block once, the last one short
    assert as_keys.requests_of("a") == as_requests.requests_of("a")


def test_send_request_keys_is_send_requests_for_triples() -> None:
    by_keys, _ = open_pair()
    by_requests, _ = open_pair()
    keys = [(0, 0, BLOCK), (0, BLOCK, 77)]
    by_keys.send_request_keys(keys)
    by_requests.send_requests([Request(*key) for key in keys])
    assert by_keys.data_to_send() == by_requests.data_to_send()
    assert by_keys.outstanding_requests == by_requests.outstanding_requests
