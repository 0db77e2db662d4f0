"""The leecher's lane (``SwarmCore.read_blocks``) against the events path, through a whole core.

Swarm cores ask their peers for blocks over real sans-IO connections, and
the peers answer with frames (the blocks asked for, some twice, some never
asked for, a ``Have`` between them), cut into reads at random.  One core
takes each read through the lane (``PeerConnection.take_blocks`` and the
frames accepted in one pass, C or its pure twin), the other through
``receive_data`` and ``BlocksReceived`` events, as before the lane.  The
picker, the piece buffers, the actions, the counters, what each connection
sends and which connections failed must be the same.
"""

from __future__ import annotations

import itertools
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scan_paths import SCAN_PATHS, scan_path
from servent.codec.bitfield import Bitfield
from servent.errors import PeerWireError
from servent.proto.peerwire import Event, Have, encode_message
from servent.proto.swarm import PeerState, SwarmCore
from servent.testing.swarm_network import SimLayout
from swarm_state import core_snapshot, open_connection, verify_pieces

BLOCK = 16384
# 4 pieces of 4 blocks, the last piece short (3 blocks, the last one short too).
LAYOUT = SimLayout(size=3 * 64 * 1024 + 2 * BLOCK + 5000, piece_length=64 * 1024)
PEERS = 2


class World:
    """One core and its peers; reads go through the lane or through events."""

    def __init__(self, *, lane: bool) -> None:
        n = LAYOUT.num_pieces
        self.lane = lane
        self.core = SwarmCore(LAYOUT, Bitfield(n), wanted=range(n), rng=random.Random(5))
        self.peers: list[PeerState] = []
        self.failed: list[bool] = []
        self.buffer = bytearray(64 * BLOCK)  # larger than any read: never resized
        for i in range(PEERS):
            conn = open_connection(bytes([65 + i]) * 20, n)
            conn.borrow_input = conn.batch_blocks = True  # as PeerSession drives it
            peer = PeerState(conn, n, 0.0, dialled=None, address=(f"10.0.0.{i + 1}", 1))
            self.core.peer_opened(peer, 0.0)
            self.core.picker.add_peer(peer, None)
            conn.data_to_send()
            self.peers.append(peer)
            self.failed.append(False)

    def ask(self, who: int, count: int, now: float) -> list[tuple[int, int, int]]:
        peer = self.peers[who]
        keys = self.core.picker.pick_blocks(peer, count)
        if not self.failed[who]:
            peer.conn._now = now
            peer.conn.send_request_keys(keys)
        return keys

    def read(self, who: int, data: bytes, now: float) -> None:
        """One read from peer ``who``: the lane first (if on), the rest as events."""
        if self.failed[who]:
            return
        peer = self.peers[who]
        self.buffer[: len(data)] = data
        view = memoryview(self.buffer)[: len(data)]
        try:
            if self.lane:
                view = view[self.core.read_blocks(peer, view, now) :]
            if view:
                self._events(peer, view, now)
        except PeerWireError:
            self.failed[who] = True
        finally:
            self.buffer[: len(data)] = b"\xee" * len(data)  # the next read overwrites it

    def _events(self, peer: PeerState, view: memoryview, now: float) -> None:
        """As ``PeerSession.drain_events``: the events parsed before an error still count."""
        peer.conn.receive_data(view, now)
        events: list[Event] = []
        try:
            while (event := peer.conn.next_event()) is not None:
                events.append(event)
        finally:
            if events:
                self.core.peer_events(peer, events, now)

    def verify(self, now: float) -> None:
        verify_pieces(self.core, now)

    def snapshot(self) -> object:
        per_peer = [
            (p.downloaded, p.pipeline.total_bytes, p.conn.payload_received,
             p.conn.outstanding_count, p.conn.data_to_send())
            for p in self.peers
        ]  # fmt: skip
        return core_snapshot(self.core, self.peers), per_peer, self.failed


def _frame(index: int, begin: int, length: int) -> bytes:
    payload = bytes([(index * 16 + begin // BLOCK) % 251 + 1]) * length
    return struct.pack(">IBII", 9 + length, 7, index, begin) + payload


def answer(keys: list[tuple[int, int, int]], twists: list[int]) -> bytes:
    """Frames answering ``keys`` in order; a twist sends a block twice, drops it, sends one
    never asked for, or puts a ``Have`` before it."""
    out = []
    for key, twist in zip(keys, itertools.chain(twists, itertools.repeat(0)), strict=False):
        if twist == 1:
            continue  # not answered (yet)
        if twist == 3:
            out.append(_frame(key[0], key[1] + 7, 100))  # never asked for: fatal
        if twist == 4:
            out.append(bytes(encode_message(Have(key[0]))))
        out.append(_frame(*key))
        if twist == 2:
            out.append(_frame(*key))  # twice: the second is unsolicited, fatal
    return b"".join(out)


steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("ask-answer"),
            st.integers(0, PEERS - 1),
            st.integers(1, 12),
            st.lists(st.sampled_from([0] * 20 + [1, 2, 3, 4]), max_size=12),
            st.lists(st.integers(0, 12 * (BLOCK + 13)), max_size=6),
        ),
        st.tuples(st.just("verify")),
    ),
    max_size=12,
)


@pytest.mark.parametrize("path", sorted(SCAN_PATHS))
@settings(max_examples=150, deadline=None)
@given(script=steps)
def test_the_lane_leaves_the_swarm_as_the_events_path_does(
    path: str, script: list[tuple[object, ...]]
) -> None:
    with scan_path(path):
        lane, events = World(lane=True), World(lane=False)
        for number, step in enumerate(script):
            now = float(number + 1)
            if step[0] == "verify":
                lane.verify(now)
                events.verify(now)
                continue
            _, who, count, twists, cuts = step
            keys = lane.ask(who, count, now)  # type: ignore[arg-type]
            assert events.ask(who, count, now) == keys  # type: ignore[arg-type]
            data = answer(keys, twists)  # type: ignore[arg-type]
            bounds = sorted({0, len(data), *(c for c in cuts if 0 < c < len(data))})  # type: ignore[attr-defined]
            for start, end in itertools.pairwise(bounds):
                lane.read(who, data[start:end], now)  # type: ignore[arg-type]
                events.read(who, data[start:end], now)  # type: ignore[arg-type]
            assert lane.snapshot() == events.snapshot(), step


def test_a_whole_download_through_the_lane_completes_and_matches() -> None:
    for path in sorted(SCAN_PATHS):
        with scan_path(path):
            lane, events = World(lane=True), World(lane=False)
            now = 1.0
            while not lane.core.complete:
                keys = lane.ask(0, 6, now)
                assert keys == events.ask(0, 6, now), "the two cores ask alike"
                assert keys, "stalled"
                data = answer(keys, [])
                for world in (lane, events):
                    world.read(0, data[: len(data) // 3], now)  # a read ends mid-block
                    world.read(0, data[len(data) // 3 :], now)
                    world.verify(now)
                now += 1.0
            assert lane.snapshot() == events.snapshot()
            assert lane.core.downloaded == LAYOUT.size
            assert events.core.complete
