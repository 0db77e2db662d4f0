"""The sans-IO swarm core between two in-memory peer connections: no sockets, no loop."""

from __future__ import annotations

import random

import pytest

from servent.codec.bitfield import Bitfield
from servent.proto.peerwire import (
    Event,
    HandshakeReceived,
    Interested,
    PeerConnection,
    Piece,
    Request,
    encode_message,
)
from servent.proto.swarm import (
    ClosePeer,
    Completed,
    PeerBanned,
    PeerState,
    SwarmCore,
    VerifyPiece,
)
from servent.proto.swarm.replacement import IdleReplacement
from servent.testing.swarm_network import SimLayout

# Every test runs on both receive paths (C where built, and Python).
pytestmark = pytest.mark.usefixtures("both_scan_paths")

LAYOUT = SimLayout(size=4 * 64 * 1024, piece_length=64 * 1024)  # 4 pieces of 4 blocks
INFO_HASH = bytes(20)


class Side:
    """One core and its view of the other side (a PeerState over a PeerConnection)."""

    def __init__(self, name: bytes, *, seed: bool, initiator: bool) -> None:
        have = Bitfield(LAYOUT.num_pieces, all_set=seed)
        self.core = SwarmCore(
            LAYOUT, have, wanted=range(LAYOUT.num_pieces), complete=seed,
            rng=random.Random(1), foreign=self._foreign,
        )  # fmt: skip
        conn = PeerConnection(
            peer_id=name * 20, info_hash=INFO_HASH, initiator=initiator,
            num_pieces=LAYOUT.num_pieces, now=0.0,
        )  # fmt: skip
        self.cues = 0
        conn.on_output = self._cue
        self.peer = PeerState(conn, LAYOUT.num_pieces, 0.0, dialled=None, address=("10.0.0.1", 1))
        self.done: list[object] = []

    def _cue(self) -> None:
        self.cues += 1

    def _foreign(self, peer: PeerState, event: Event, now: float) -> None:
        if isinstance(event, HandshakeReceived):
            self.core.peer_opened(peer, now)

    def serve_uploads(self) -> None:
        """What the shell's uploader does: answer accepted requests with zeros."""
        while self.peer.uploads:
            request = self.peer.uploads.popleft()
            self.peer.conn.send(Piece(request.index, request.begin, bytes(request.length)))

    def take_actions(self, now: float) -> list[object]:
        """Carry out the core's actions like a shell with storage that always verifies."""
        taken: list[object] = []
        while self.core.actions:
            action = self.core.actions.pop(0)
            taken.append(action)
            if isinstance(action, VerifyPiece):
                self.core.have.set(action.index)
                self.core.piece_checked(action.index, action.data, action.sources, True, now)
        self.done.extend(taken)
        return taken


def pump(a: Side, b: Side, rounds: int = 200) -> None:
    """Move bytes both ways until neither side has anything to say."""
    now = 0.0
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            src.serve_uploads()
            data = src.peer.conn.data_to_send()
            if not data:
                continue
            moved = True
            now += 0.01
            dst.peer.conn.receive_data(data, now)
            events = []
            while (event := dst.peer.conn.next_event()) is not None:
                events.append(event)
            dst.core.peer_events(dst.peer, events, now)
            dst.take_actions(now)
        if not moved:
            return
        for side in (a, b):
            side.core.tick(now, 0.01)
            side.take_actions(now)


def test_a_leecher_gets_every_piece_from_a_seed_once() -> None:
    seed = Side(b"s", seed=True, initiator=False)
    leecher = Side(b"l", seed=False, initiator=True)
    pump(seed, leecher)
    verified = [a.index for a in leecher.done if isinstance(a, VerifyPiece)]
    assert sorted(verified) == list(range(LAYOUT.num_pieces))
    assert any(isinstance(a, Completed) for a in leecher.done)
    assert leecher.core.complete and leecher.core.have.all()
    assert leecher.core.have_bytes == leecher.core.wanted_bytes == LAYOUT.size
    assert leecher.core.downloaded == LAYOUT.size and leecher.core.wasted == 0
    # Two seeds have nothing to trade: the leecher, now complete, asks to close.
    assert [a.reason for a in leecher.done if isinstance(a, ClosePeer)] == ["both are seeds"]


def test_messages_cue_the_shell_once_per_batch() -> None:
    seed = Side(b"s", seed=True, initiator=False)
    leecher = Side(b"l", seed=False, initiator=True)
    seed.peer.conn.receive_data(leecher.peer.conn.data_to_send(), 0.0)
    events = []
    while (event := seed.peer.conn.next_event()) is not None:
        events.append(event)
    seed.core.peer_events(seed.peer, events, 0.0)
    # Its handshake, then the core's HaveAll: two messages, one cue to write.
    assert seed.cues == 1
    assert len(seed.peer.conn.data_to_send()) > 68
    seed.core.run_choker(1.0)  # nobody is interested yet: nothing to say
    assert seed.cues == 1
    seed.peer.conn.receive_data(encode_message(Interested()), 1.0)
    seed.core.peer_events(seed.peer, [seed.peer.conn.next_event()], 1.0)  # type: ignore[list-item]
    assert not seed.peer.conn.am_choking  # a free upload slot: unchoked at once ...
    assert seed.cues == 2  # ... and the Unchoke cued a write


def test_a_failed_piece_from_a_single_peer_bans_it() -> None:
    seed = Side(b"s", seed=True, initiator=False)
    leecher = Side(b"l", seed=False, initiator=True)
    leecher.take_actions = lambda now: []  # type: ignore[method-assign]  # hold verifications
    pump(seed, leecher)
    verify = next(a for a in leecher.core.actions if isinstance(a, VerifyPiece))
    leecher.core.actions.clear()
    leecher.core.piece_checked(verify.index, verify.data, verify.sources, False, 1.0)
    banned = [a for a in leecher.core.actions if isinstance(a, PeerBanned)]
    assert [b.identity[:2] for b in banned] == [("10.0.0.1", 1)]
    closes = [a for a in leecher.core.actions if isinstance(a, ClosePeer)]
    assert closes and closes[0].abort and closes[0].peer is leecher.peer
    assert leecher.core.hash_failures == 1
    assert leecher.core.wasted == LAYOUT.piece_size(verify.index)


def test_a_request_beyond_the_piece_closes_the_peer() -> None:
    seed = Side(b"s", seed=True, initiator=False)
    leecher = Side(b"l", seed=False, initiator=True)
    pump(seed, leecher, rounds=2)
    seed.core.peer_events(seed.peer, [Request(0, 64 * 1024 - 8, 16)], 1.0)
    assert [a.reason for a in seed.core.actions if isinstance(a, ClosePeer)] == [
        "request beyond the end of the piece"
    ]
    assert seed.peer.closing is not None


def test_an_idle_peer_is_replaced_at_most_once_per_interval() -> None:
    busy, idle = Side(b"a", seed=False, initiator=True), Side(b"b", seed=False, initiator=True)
    for side in (busy, idle):
        side.peer.open = True
    busy.peer.down_rate = 50_000.0  # it delivers: kept
    policy = IdleReplacement(interval=10.0, min_age=30.0)
    peers = [busy.peer, idle.peer]
    assert policy.choose(peers, 20.0, room=0, candidates_waiting=True, complete=False) is None
    assert policy.choose(peers, 40.0, room=1, candidates_waiting=True, complete=False) is None
    assert policy.choose(peers, 40.0, room=0, candidates_waiting=False, complete=False) is None
    chosen = policy.choose(peers, 40.0, room=0, candidates_waiting=True, complete=False)
    assert chosen is idle.peer and policy.replaced == 1
    assert policy.choose(peers, 45.0, room=0, candidates_waiting=True, complete=False) is None


def test_a_piece_with_a_deadline_is_fetched_first() -> None:
    seed = Side(b"s", seed=True, initiator=False)
    leecher = Side(b"l", seed=False, initiator=True)
    leecher.core.set_deadlines({3: 0.0}, 0.0)  # a stream reads the last piece
    pump(seed, leecher)
    verified = [a.index for a in leecher.done if isinstance(a, VerifyPiece)]
    assert verified[0] == 3 and sorted(verified) == list(range(LAYOUT.num_pieces))
    assert leecher.core.picker.deadlines() == {}  # verified: its deadline is gone


def test_a_closed_peer_leaves_the_picker_and_its_requests_go_to_others() -> None:
    """A peer that closes with requests in flight: nothing of it stays in the picker, so
    the blocks it was asked for are free for the next peer (not only in endgame, and not
    held by up to ``endgame_max_requesters`` peers long gone: a download under churn once
    stalled on one block whose three requesters had all left)."""
    seed = Side(b"s", seed=True, initiator=False)
    leecher = Side(b"l", seed=False, initiator=True)
    seed.serve_uploads = lambda: None  # type: ignore[method-assign]  # the seed never answers
    pump(seed, leecher)
    picker = leecher.core.picker
    asked = {(r.index, r.begin) for r in picker.requests_of(leecher.peer)}
    assert asked, "the leecher never sent a request"
    leecher.core.peer_closed(leecher.peer)
    assert picker.requests_of(leecher.peer) == []
    assert picker.availability(0) == 0  # it was a seed: no longer counted
    newcomer = object()
    picker.add_peer(newcomer, None)  # a seed
    picked = {(r.index, r.begin) for r in picker.pick(newcomer, 64)}
    assert asked <= picked
