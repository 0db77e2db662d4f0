"""The leecher's lane (``PeerConnection.read_blocks``): a read's leading blocks without events.

The lane must be invisible but for its cost: fed the same bytes cut into the
same reads, a connection driven through the lane (the driver passes what it
did not take to ``receive_data``) hands over the same blocks, with the same
request times, the same other events in the same places, and fails on the
same frame as the regular path.  The property test below holds the two
together on random streams and random read boundaries, hostile frames
included.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire_pair import open_unchoked
from polling import wait_for
from servent.errors import PeerWireError
from servent.net.peer_session import PeerSession
from servent.proto.peerwire import (
    BlocksReceived,
    Cancel,
    ConnectionConfig,
    Event,
    Have,
    PeerConnection,
    ReceivedBlock,
    encode_message,
)

pytestmark = pytest.mark.usefixtures("both_scan_paths")

INFO_HASH = b"\x11" * 20
BLOCK = 16384
NUM_PIECES = 4
BLOCKS_PER_PIECE = 4
MAX_MESSAGE = 64 * 1024


def open_pair(now: float = 0.0) -> tuple[PeerConnection, PeerConnection]:
    """A leecher as ``PeerSession`` drives it (borrowing, batching) and its seeder, unchoked."""
    config = ConnectionConfig(enable_fast=False, max_message_length=MAX_MESSAGE)
    leecher, seeder = open_unchoked(NUM_PIECES, now=now, config=config)
    leecher.borrow_input = True
    leecher.batch_blocks = True
    return leecher, seeder


def piece_frame(index: int, begin: int, length: int = BLOCK) -> bytes:
    payload = bytes([(index * 7 + begin // BLOCK) % 251]) * length
    return struct.pack(">IBII", 9 + length, 7, index, begin) + payload


def all_keys() -> list[tuple[int, int, int]]:
    return [(i, b * BLOCK, BLOCK) for i in range(NUM_PIECES) for b in range(BLOCKS_PER_PIECE)]


class Driver:
    """Feeds reads through one reused buffer; records what comes out, in order."""

    def __init__(self, conn: PeerConnection, *, lane: bool) -> None:
        self.conn = conn
        self.lane = lane
        self.seen: list[object] = []
        self.failure: type[PeerWireError] | None = None
        self.buffer = bytearray(256 * 1024)

    def read(self, data: bytes, now: float) -> None:
        if self.failure is not None:
            return
        self.buffer[: len(data)] = data
        view = memoryview(self.buffer)[: len(data)]
        try:
            rest = view
            if self.lane:
                blocks, taken = self.conn.read_blocks(view, now)
                self._blocks(blocks)
                rest = view[taken:]
                if not rest:
                    return
            self.conn.receive_data(rest, now)
            while (event := self.conn.next_event()) is not None:
                if isinstance(event, BlocksReceived):
                    self._blocks(event.blocks)
                else:
                    self.seen.append(event)
        except PeerWireError as exc:
            self.failure = type(exc)
        finally:
            self.buffer[: len(data)] = b"\xee" * len(data)  # the next read overwrites it

    def _blocks(self, blocks: list[tuple[int, int, object, float | None]]) -> None:
        for index, begin, block, sent_at in blocks:
            self.seen.append(("block", index, begin, bytes(block), sent_at))  # type: ignore[call-overload]


def run(stream: bytes, cuts: list[int], *, lane: bool, cancel: int) -> Driver:
    leecher, _seeder = open_pair()
    keys = all_keys()
    leecher.send_request_keys(keys)
    for index, begin, length in keys[:cancel]:
        leecher.send(Cancel(index, begin, length))  # without BEP 6: a late block stays legal
    leecher.data_to_send()
    driver = Driver(leecher, lane=lane)
    bounds = sorted({0, len(stream), *(c for c in cuts if 0 < c < len(stream))})
    for number, (start, end) in enumerate(itertools.pairwise(bounds)):
        driver.read(stream[start:end], now=1.0 + number)
    return driver


# One element of a random stream: a block we asked for (by its key's number),
# a Have, a keep-alive, a block never asked for, an index out of range, a frame
# too long, or a block of the wrong length.
_ITEM = st.one_of(
    st.tuples(st.just("block"), st.integers(0, NUM_PIECES * BLOCKS_PER_PIECE - 1)),
    st.tuples(st.just("have"), st.integers(0, NUM_PIECES - 1)),
    st.tuples(st.just("keepalive"), st.just(0)),
    st.tuples(st.just("unsolicited"), st.just(0)),
    st.tuples(st.just("out-of-range"), st.just(0)),
    st.tuples(st.just("too-long"), st.just(0)),
    st.tuples(st.just("short-block"), st.integers(0, NUM_PIECES * BLOCKS_PER_PIECE - 1)),
)


def encode(item: tuple[str, int]) -> bytes:
    kind, number = item
    keys = all_keys()
    if kind == "block":
        return piece_frame(*keys[number][:2])
    if kind == "have":
        return bytes(encode_message(Have(number)))
    if kind == "keepalive":
        return b"\0\0\0\0"
    if kind == "unsolicited":
        return piece_frame(0, 3 * BLOCK + 7, 100)
    if kind == "out-of-range":
        return piece_frame(NUM_PIECES, 0)
    if kind == "too-long":
        return struct.pack(">IB", MAX_MESSAGE + 1, 7) + b"\0" * 8
    index, begin, _ = keys[number]
    return piece_frame(index, begin, BLOCK - 1)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(_ITEM, max_size=24),
    cuts=st.lists(st.integers(0, 25 * (BLOCK + 13)), max_size=12),
    cancel=st.integers(0, 3),
)
def test_the_lane_hands_over_what_the_regular_path_does(
    items: list[tuple[str, int]], cuts: list[int], cancel: int
) -> None:
    stream = b"".join(encode(item) for item in items)
    regular = run(stream, cuts, lane=False, cancel=cancel)
    lane = run(stream, cuts, lane=True, cancel=cancel)
    assert lane.seen == regular.seen
    assert lane.failure == regular.failure
    assert lane.conn.payload_received == regular.conn.payload_received
    assert lane.conn.outstanding_count == regular.conn.outstanding_count


def test_a_read_of_whole_blocks_is_taken_whole_and_a_cut_one_is_carried() -> None:
    leecher, _ = open_pair()
    keys = all_keys()[:3]
    leecher.send_request_keys(keys)
    stream = b"".join(piece_frame(i, b) for i, b, _ in keys)
    cut = 2 * (BLOCK + 13) + 100
    driver = Driver(leecher, lane=True)
    first = memoryview(bytearray(stream[:cut]))
    blocks, taken = leecher.read_blocks(first, 1.0)
    assert taken == cut  # two whole blocks, and the head of the third kept
    assert [(i, b) for i, b, _, _ in blocks] == [(0, 0), (0, BLOCK)]
    first[:] = b"\xee" * cut  # the driver reuses its buffer: the carried bytes are a copy
    driver.read(stream[cut:], 2.0)
    assert driver.seen == [("block", 0, 2 * BLOCK, piece_frame(0, 2 * BLOCK)[13:], 0.0)]
    assert leecher.payload_received == 3 * BLOCK
    assert leecher.outstanding_count == 0


def test_the_lane_stops_at_a_message_and_leaves_it_to_the_regular_path() -> None:
    leecher, _ = open_pair()
    leecher.send_request_keys(all_keys()[:1])
    stream = encode_message(Have(2)) + piece_frame(0, 0)
    blocks, taken = leecher.read_blocks(memoryview(bytearray(stream)), 1.0)
    assert (blocks, taken) == ([], 0)
    assert leecher.outstanding_count == 1


def test_an_unsolicited_block_is_left_to_the_regular_path_which_fails() -> None:
    leecher, _ = open_pair()
    leecher.send_request_keys(all_keys()[:1])
    stream = piece_frame(0, 0) + piece_frame(1, 0)
    driver = Driver(leecher, lane=True)
    driver.read(stream, 1.0)
    assert [entry[:3] for entry in driver.seen] == [("block", 0, 0)]  # type: ignore[index]
    assert driver.failure is not None and driver.failure.__name__ == "UnexpectedMessageError"


def test_the_lane_takes_nothing_before_the_connection_is_open() -> None:
    fresh = PeerConnection(
        peer_id=b"L" * 20, info_hash=INFO_HASH, initiator=True, now=0.0, num_pieces=NUM_PIECES
    )
    fresh.borrow_input = fresh.batch_blocks = True
    assert fresh.read_blocks(memoryview(bytearray(piece_frame(0, 0))), 1.0) == ([], 0)


def test_the_lane_takes_nothing_without_batching() -> None:
    leecher, _ = open_pair()
    leecher.send_request_keys(all_keys()[:1])
    leecher.batch_blocks = False
    assert leecher.read_blocks(memoryview(bytearray(piece_frame(0, 0))), 1.0) == ([], 0)
    assert leecher.outstanding_count == 1


class Recorder:
    """A session's handler with the lane entry, as ``TorrentSession`` sets it."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    def peer_events(self, session: PeerSession, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, BlocksReceived):
                self.blocks_read(session, event.blocks, 0.0, how="event")
            else:
                self.seen.append(event)

    def read(self, session: PeerSession, data: memoryview, now: float) -> int:
        blocks, taken = session.conn.read_blocks(data, now)
        self.blocks_read(session, blocks, now)
        return taken

    def blocks_read(
        self, session: PeerSession, blocks: list[ReceivedBlock], now: float, how: str = "lane"
    ) -> None:
        for index, begin, block, _ in blocks:
            self.seen.append((how, index, begin, bytes(block[:1])))

    def peer_closed(self, session: PeerSession) -> None:
        self.seen.append("closed")


async def test_a_session_hands_lane_blocks_and_events_over_in_stream_order() -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    leecher, _ = open_pair(loop.time())
    handler = Recorder()
    try:
        transport, session = await loop.create_connection(
            lambda: PeerSession(leecher, handler), sock=ours
        )
        session.on_read = handler.read
        leecher.send_request_keys(all_keys()[:3])
        theirs.setblocking(False)
        # A read that begins with a message: all of it takes the regular path.
        await loop.sock_sendall(
            theirs, encode_message(Have(1)) + piece_frame(0, 0) + encode_message(Have(2))
        )
        await wait_for(lambda: len(handler.seen) >= 3, "the first read's events", 5.0)
        # Reads that begin with blocks: the lane.
        await loop.sock_sendall(theirs, piece_frame(0, BLOCK) + piece_frame(0, 2 * BLOCK))
        await wait_for(lambda: len(handler.seen) >= 5, "the lane's blocks", 5.0)
        assert handler.seen == [
            Have(1), ("event", 0, 0, b"\x00"), Have(2),
            ("lane", 0, BLOCK, b"\x01"), ("lane", 0, 2 * BLOCK, b"\x02"),
        ]  # fmt: skip
        assert leecher.payload_received == 3 * BLOCK
        session.close("test over")
        await asyncio.wait_for(session.wait_closed(), 5.0)
        assert transport.is_closing()
    finally:
        theirs.close()
