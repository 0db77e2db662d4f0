"""Blocks handed over as runs (``PeerConnection.batch_blocks``): one event per run of pieces.

A run must keep every check of the one-event-per-block path: a block we did not
ask for, or with a piece index out of range, is still fatal, and the blocks
before it in the same read still reach the session first.
"""

from __future__ import annotations

import random

import pytest

from peerwire_pair import open_unchoked
from servent.codec.bitfield import Bitfield
from servent.errors import MalformedMessageError, UnexpectedMessageError
from servent.proto.peerwire import (
    BlocksReceived,
    Cancel,
    ConnectionConfig,
    Event,
    Have,
    PeerConnection,
    Piece,
    encode_message,
)
from servent.proto.swarm import PeerState, SwarmCore

# Every test runs on both receive paths (C where built, and Python).
pytestmark = pytest.mark.usefixtures("both_scan_paths")

INFO_HASH = b"\x11" * 20
BLOCK = 16384
NUM_PIECES = 8


def open_pair(*, fast: bool = True) -> tuple[PeerConnection, PeerConnection]:
    """A leecher as the session drives it (borrowing, batching) and a seeder, unchoked."""
    leecher, seeder = open_unchoked(NUM_PIECES, config=ConnectionConfig(enable_fast=fast))
    leecher.borrow_input = True
    leecher.batch_blocks = True
    return leecher, seeder


def read(conn: PeerConnection, data: bytes, now: float = 1.0) -> list[Event]:
    """Feed ``data`` as a driver with one reused buffer does; blocks are copied out."""
    buffer = bytearray(data)
    conn.receive_data(memoryview(buffer), now)
    events: list[Event] = []
    while (event := conn.next_event()) is not None:
        events.append(_copied(event))
    buffer[:] = b"\xee" * len(buffer)  # the driver's next read overwrites its buffer
    return events


def _copied(event: Event) -> Event:
    if isinstance(event, BlocksReceived):
        return BlocksReceived([(i, b, bytes(block), at) for i, b, block, at in event.blocks])
    return event


def block(index: int, begin: int) -> bytes:
    return bytes([index * 16 + begin // BLOCK]) * BLOCK


def pieces(*keys: tuple[int, int]) -> bytes:
    return b"".join(encode_message(Piece(i, b, block(i, b))) for i, b in keys)


def test_consecutive_blocks_of_one_read_are_one_event_with_their_request_times() -> None:
    leecher, _ = open_pair()
    keys = [(2, 0), (2, BLOCK), (3, 0)]
    assert read(leecher, b"\0\0\0\0", now=0.5) == []  # a keep-alive: the time is now 0.5
    leecher.send_request_keys([(i, b, BLOCK) for i, b in keys])
    events = read(leecher, pieces(*keys) + encode_message(Have(5)), now=2.0)
    assert events == [
        BlocksReceived([(i, b, block(i, b), 0.5) for i, b in keys]),
        Have(5),
    ]
    assert leecher.outstanding_count == 0
    assert leecher.payload_received == 3 * BLOCK


def test_events_between_blocks_keep_their_place() -> None:
    leecher, _ = open_pair()
    leecher.send_request_keys([(1, 0, BLOCK), (1, BLOCK, BLOCK)])
    data = encode_message(Have(4)) + pieces((1, 0)) + encode_message(Have(6)) + pieces((1, BLOCK))
    events = read(leecher, data)
    assert [type(e) for e in events] == [Have, BlocksReceived, Have, BlocksReceived]
    assert [e.blocks[0][:2] for e in events if isinstance(e, BlocksReceived)] == [
        (1, 0),
        (1, BLOCK),
    ]


def test_blocks_before_an_unsolicited_block_come_first_then_it_is_fatal() -> None:
    leecher, _ = open_pair()
    leecher.send_request_keys([(0, 0, BLOCK), (0, BLOCK, BLOCK)])
    buffer = bytearray(pieces((0, 0), (0, BLOCK), (0, 2 * BLOCK)))
    leecher.receive_data(memoryview(buffer), 1.0)
    first = leecher.next_event()
    assert isinstance(first, BlocksReceived)
    assert [b[:2] for b in first.blocks] == [(0, 0), (0, BLOCK)]
    with pytest.raises(UnexpectedMessageError):
        leecher.next_event()


def test_a_block_with_a_piece_index_out_of_range_ends_the_run_and_is_fatal() -> None:
    leecher, _ = open_pair()
    leecher.send_request_keys([(0, 0, BLOCK)])
    buffer = bytearray(pieces((0, 0)) + encode_message(Piece(NUM_PIECES, 0, b"x" * 10)))
    leecher.receive_data(memoryview(buffer), 1.0)
    event = leecher.next_event()
    assert isinstance(event, BlocksReceived) and len(event.blocks) == 1
    with pytest.raises(MalformedMessageError):
        leecher.next_event()


def test_a_block_cut_by_the_end_of_a_read_is_whole_in_the_next_run() -> None:
    leecher, _ = open_pair()
    keys = [(4, 0), (4, BLOCK), (4, 2 * BLOCK), (5, 0)]
    leecher.send_request_keys([(i, b, BLOCK) for i, b in keys])
    data = pieces(*keys)
    cut = len(data) // 2 + 7  # inside the second block
    events = read(leecher, data[:cut]) + read(leecher, data[cut:])
    got = [b for e in events if isinstance(e, BlocksReceived) for b in e.blocks]
    assert got == [(i, b, block(i, b), 0.0) for i, b in keys]


def test_a_late_block_of_a_cancelled_request_has_no_request_time() -> None:
    leecher, _ = open_pair(fast=False)
    leecher.send_request_keys([(0, 0, BLOCK), (0, BLOCK, BLOCK)])
    leecher.send(Cancel(0, BLOCK, BLOCK))  # without BEP 6 a late piece is still legal
    events = read(leecher, pieces((0, 0), (0, BLOCK)))
    assert events == [BlocksReceived([(0, 0, block(0, 0), 0.0), (0, BLOCK, block(0, BLOCK), None)])]


def test_without_batching_each_block_is_a_piece_event() -> None:
    leecher, _ = open_pair()
    leecher.batch_blocks = False
    leecher.send_request_keys([(0, 0, BLOCK), (0, BLOCK, BLOCK)])
    events = read(leecher, pieces((0, 0), (0, BLOCK)))
    assert [type(e) for e in events] == [Piece, Piece]


# ------------------------------------------------------------------ the core's side


class _Layout:
    num_pieces = 4
    piece_length = 4 * BLOCK

    def piece_size(self, index: int) -> int:
        return self.piece_length

    def piece_payload_size(self, index: int) -> int:
        return self.piece_length

    def block_payload_size(self, index: int, begin: int, length: int) -> int:
        return length


def _core_with_peer() -> tuple[SwarmCore, PeerState]:
    layout = _Layout()
    core = SwarmCore(layout, Bitfield(4), wanted=range(4), rng=random.Random(5))
    conn, _ = open_pair()
    peer = PeerState(conn, 4, 0.0, dialled=("127.0.0.1", 1))
    core.peer_opened(peer, 0.0)
    return core, peer


def test_core_blocks_does_what_block_does_for_each() -> None:
    by_run, run_peer = _core_with_peer()
    one_by_one, single_peer = _core_with_peer()
    for core, peer in ((by_run, run_peer), (one_by_one, single_peer)):
        core.picker.add_peer(peer, None)
        assert core.picker.pick_blocks(peer, 6) == [
            (k // 4, (k % 4) * BLOCK, BLOCK) for k in range(6)
        ]
    blocks = [(k // 4, (k % 4) * BLOCK, block(k // 4, (k % 4) * BLOCK), 0.25) for k in range(6)]
    blocks.append(blocks[1])  # a duplicate: wasted
    by_run.blocks(run_peer, blocks, 1.0)
    for index, begin, data, at in blocks:
        one_by_one.block(single_peer, index, begin, data, at, now=1.0)
    for core, peer in ((by_run, run_peer), (one_by_one, single_peer)):
        assert core.downloaded == 7 * BLOCK and core.wasted == BLOCK
        assert peer.downloaded == 7 * BLOCK
        assert peer.pipeline.latency == 0.75
        (verify,) = core.actions
        assert verify.index == 0 and bytes(verify.data) == b"".join(
            block(0, b * BLOCK) for b in range(4)
        )
    assert by_run.assembly.buffers.keys() == one_by_one.assembly.buffers.keys() == {1}
    assert by_run.assembly.buffers[1] == one_by_one.assembly.buffers[1]
