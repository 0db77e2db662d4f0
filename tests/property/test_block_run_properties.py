"""Hypothesis: blocks handed over as runs are the blocks of one event each, however split.

The session parses its shared read buffer in place and takes consecutive
piece messages as one ``BlocksReceived`` (``borrow_input`` and
``batch_blocks``).  Whatever the read boundaries, the blocks, their order
among the other events and the request times must be those of the plain
path (a copied ``Piece`` event per block); hostile bytes may only raise a
``PeerWireError``.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scan_paths import SCAN_PATHS, scan_path
from servent.errors import PeerWireError
from servent.proto.peerwire import (
    BlocksReceived,
    ConnectionState,
    Event,
    HandshakeReceived,
    Have,
    PeerConnection,
    Piece,
    Unchoke,
    encode_message,
)

INFO_HASH = b"\x11" * 20
NUM_PIECES = 16
BLOCK = 64  # small blocks: many frames per example


def _leecher(batched: bool) -> PeerConnection:
    leecher = PeerConnection(
        peer_id=b"L" * 20, info_hash=INFO_HASH, initiator=True, now=0.0, num_pieces=NUM_PIECES
    )
    seeder = PeerConnection(
        peer_id=b"S" * 20, info_hash=INFO_HASH, initiator=False, now=0.0, num_pieces=NUM_PIECES
    )
    seeder.receive_data(leecher.data_to_send(), 0.0)
    assert isinstance(seeder.next_event(), HandshakeReceived)
    seeder.send(Unchoke())
    leecher.receive_data(seeder.data_to_send(), 0.0)
    assert isinstance(leecher.next_event(), HandshakeReceived)
    assert leecher.next_event() == Unchoke()
    leecher.borrow_input = batched
    leecher.batch_blocks = batched
    # Every block of pieces 0..7 is asked for (the stream may answer any of them).
    leecher.send_request_keys([(i, b * BLOCK, BLOCK) for i in range(8) for b in range(4)])
    return leecher


def _flat(event: Event) -> list[object]:
    """An event as the plain path reports it (blocks copied while their buffer lives)."""
    if isinstance(event, BlocksReceived):
        return [(i, b, bytes(block), at) for i, b, block, at in event.blocks]
    if isinstance(event, Piece):
        return [(event.index, event.begin, bytes(event.block), 0.0)]
    return [event]


def _feed(conn: PeerConnection, data: bytes, cuts: list[int]) -> tuple[list[object], bool]:
    """Feed ``data`` split at ``cuts`` through one reused buffer; (events, failed)."""
    out: list[object] = []
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    buffer = bytearray(max(len(data), 1))
    try:
        for start, end in itertools.pairwise(bounds):
            buffer[: end - start] = data[start:end]
            conn.receive_data(memoryview(buffer)[: end - start], 1.0)
            while (event := conn.next_event()) is not None:
                out.extend(_flat(event))
            buffer[:] = b"\xee" * len(buffer)  # the next read overwrites it
    except PeerWireError:
        assert conn.state is ConnectionState.CLOSED
        assert conn.next_event() is None
        return out, True
    return out, False


answers = st.lists(
    st.one_of(
        st.tuples(st.integers(0, 7), st.integers(0, 3)).map(
            lambda key: Piece(key[0], key[1] * BLOCK, bytes([key[0] * 4 + key[1]]) * BLOCK)
        ),
        st.builds(Have, st.integers(0, NUM_PIECES - 1)),
    ),
    max_size=30,
)


@pytest.mark.parametrize("path", sorted(SCAN_PATHS))
@settings(max_examples=300)
@given(answers, st.lists(st.integers(0, 3000), max_size=10))
def test_runs_give_the_blocks_and_events_of_the_plain_path(
    path: str, sent: list[Piece | Have], cuts: list[int]
) -> None:
    data = b"".join(encode_message(m) for m in sent)
    plain, plain_failed = _feed(_leecher(False), data, [])
    with scan_path(path):
        batched, batched_failed = _feed(_leecher(True), data, cuts)
    assert batched == plain
    assert batched_failed == plain_failed  # a second answer to one request is unsolicited


@settings(max_examples=300)
@given(answers, st.binary(max_size=40), st.integers(0, 3000), st.lists(st.integers(0, 3000)))
def test_runs_survive_hostile_bytes_alike_on_both_scans(
    sent: list[Piece | Have], junk: bytes, where: int, cuts: list[int]
) -> None:
    data = b"".join(encode_message(m) for m in sent)
    position = where % (len(data) + 1)
    hostile = data[:position] + junk + data[position:]
    outcomes = []
    for path in sorted(SCAN_PATHS):
        with scan_path(path):
            outcomes.append(_feed(_leecher(True), hostile, cuts))
    assert all(outcome == outcomes[0] for outcome in outcomes)
