"""The compiled run of usual blocks (``accept_run``) against the per-block Python step.

Two swarm cores get the same requests and the same deliveries: one takes
the usual blocks of each run in C, the other takes every block the Python
way (the definition).  Deliveries mix the usual case with everything the C
path must leave alone: blocks never asked for, from another peer, twice,
of the wrong length or offset, completing a piece, for a piece not started,
endgame duplicates.  Afterwards the picker, the piece buffers, the counters,
the actions and the cancels sent must be the same.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bitfield import Bitfield
from servent.proto.swarm import PeerState, SwarmCore
from servent.proto.swarm.block_run import NATIVE
from servent.testing.swarm_network import SimLayout
from swarm_state import core_snapshot, open_connection, verify_pieces

BLOCK = 16384
# 4 pieces of 4 blocks, the last piece short (3 blocks, the last one short too).
LAYOUT = SimLayout(size=3 * 64 * 1024 + 2 * BLOCK + 5000, piece_length=64 * 1024)
PEERS = 3


class World:
    """One core and its peers (seeds), taking blocks with or without the C path."""

    def __init__(self, native: bool) -> None:
        n = LAYOUT.num_pieces
        self.core = SwarmCore(LAYOUT, Bitfield(n), wanted=range(n), rng=random.Random(5))
        if not native:
            self.core._block_run.accept = None
        self.peers = []
        for i in range(PEERS):
            conn = open_connection(bytes([65 + i]) * 20, n)
            peer = PeerState(conn, n, 0.0, dialled=None, address=(f"10.0.0.{i + 1}", 1))
            self.core.peer_opened(peer, 0.0)
            self.core.picker.add_peer(peer, None)
            conn.data_to_send()
            self.peers.append(peer)

    def apply(self, step: tuple[object, ...], now: float) -> None:
        kind = step[0]
        if kind == "pick":
            _, who, count = step
            self.core.picker.pick_blocks(self.peers[who], count)  # type: ignore[index]
        elif kind == "deliver":
            _, who, parts = step
            blocks = [_block(index, block, skew, sent) for index, block, skew, sent in parts]  # type: ignore[attr-defined]
            self.core.blocks(self.peers[who], blocks, now)  # type: ignore[index]
        elif kind == "answer":  # the peer sends what it was asked for, some blocks bent
            _, who, skews = step
            peer = self.peers[who]  # type: ignore[index]
            self.core.picker.pick_blocks(peer, len(skews))  # type: ignore[arg-type]
            per_piece = self.core.picker.blocks_per_piece
            asked = sorted(divmod(key, per_piece) for key in self.core.picker._peer_blocks[peer])
            blocks = [
                _block(index, block, skew, now - 0.5)
                for (index, block), skew in zip(asked, skews, strict=False)  # type: ignore[call-overload]
            ]
            self.core.blocks(peer, blocks, now)
        else:
            self._verify(now)

    def _verify(self, now: float) -> None:
        verify_pieces(self.core, now)

    def snapshot(self) -> object:
        """Everything the two paths could disagree on, with peers as their numbers."""
        per_peer = [
            (p.downloaded, sorted(vars(p.pipeline).items(), key=str), p.conn.data_to_send())
            for p in self.peers
        ]
        return core_snapshot(self.core, self.peers), per_peer


def _block(
    index: int, block: int, skew: int, sent: float | None
) -> tuple[int, int, memoryview, float | None]:
    """A block as the wire hands it over; ``skew`` bends its offset or length (hostile)."""
    begin = block * BLOCK + (7 if skew == 1 else 0)
    size = max(0, min(BLOCK, LAYOUT.piece_size(index) - begin)) + (3 if skew == 2 else 0)
    if skew == 3:
        size = max(0, size - 1)
    data = bytes([(index * 16 + block + skew) % 251 + 1]) * size
    return index, begin, memoryview(data), sent


parts = st.lists(
    st.tuples(
        st.integers(0, LAYOUT.num_pieces - 1),
        st.integers(0, 4),
        st.sampled_from([0, 0, 0, 0, 1, 2, 3]),
        st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
    ),
    max_size=12,
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("pick"), st.integers(0, PEERS - 1), st.integers(1, 20)),
        st.tuples(st.just("deliver"), st.integers(0, PEERS - 1), parts),
        st.tuples(
            st.just("answer"),
            st.integers(0, PEERS - 1),
            st.lists(st.sampled_from([0] * 12 + [1, 2, 3]), max_size=20),
        ),
        st.tuples(st.just("verify")),
    ),
    max_size=25,
)


@settings(max_examples=400)
@given(steps)
def test_the_c_path_leaves_the_swarm_as_the_python_path_does(
    script: list[tuple[object, ...]],
) -> None:
    native, python = World(native=True), World(native=False)
    for number, step in enumerate(script):
        native.apply(step, float(number))
        python.apply(step, float(number))
        assert native.snapshot() == python.snapshot(), step


def test_a_whole_download_in_runs_matches_block_by_block() -> None:
    """Every block asked of one peer, delivered in runs: the usual case end to end."""
    worlds = World(native=True), World(native=False)
    for world in worlds:
        peer = world.peers[0]
        now = 1.0
        while not world.core.complete:
            keys = world.core.picker.pick_blocks(peer, 6)
            assert keys, "stalled"
            blocks = [_block(i, b // BLOCK, 0, now) for i, b, _ in keys]
            world.core.blocks(peer, blocks, now)
            world.apply(("verify",), now)
            now += 1.0
    assert worlds[0].snapshot() == worlds[1].snapshot()
    assert worlds[0].core.downloaded == LAYOUT.size
    assert worlds[0].core._block_run.accept is not None or not NATIVE
