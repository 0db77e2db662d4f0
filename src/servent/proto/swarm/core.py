"""The swarm core of one torrent: every download and upload decision, sans-IO.

Driven by calls that carry ``now`` (a peer opened or closed, the events of
one read, one received block, a piece checked, a timer tick), it decides
interest, choking, which blocks to request and how many, endgame cancels,
what a complete piece means (verify it), what a checked piece means (haves,
bans, parole, completion).  Messages go straight into each peer's sans-IO
:class:`~servent.proto.peerwire.PeerConnection`; what the core cannot do
itself is appended to :attr:`SwarmCore.actions` (see
:mod:`~servent.proto.swarm.actions`) for the shell to carry out.  The
asyncio shell (:class:`servent.net.torrent_session.TorrentSession`) and the
simulator (:mod:`bench.swarm_sim`) drive the same class.

Composition: the picker, the upload slots (choker), provenance and bans, the
piece assembly and the request filler each keep their own state.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from operator import attrgetter

from servent.codec.bitfield import Bitfield
from servent.proto.choker import ChokerConfig
from servent.proto.hash_serving import HashServer
from servent.proto.peerwire import (
    AllowedFast,
    BlocksReceived,
    Cancel,
    Choke,
    Event,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveBitfield,
    HaveNone,
    Interested,
    NotInterested,
    Piece,
    ReceivedBlock,
    RejectRequest,
    Request,
    RequestsDropped,
    Snubbed,
    Unchoke,
)
from servent.proto.picker import PiecePicker
from servent.proto.piece_blocks import ACCEPTED
from servent.proto.rate_meter import RateMeter
from servent.proto.swarm.actions import (
    Action,
    ClosePeer,
    Completed,
    HoldOff,
    PeerBanned,
    Reopened,
    VerifyPiece,
)
from servent.proto.swarm.assembly import PieceAssembly
from servent.proto.swarm.block_run import BlockRun, ReceivedData, RunCounts
from servent.proto.swarm.config import PieceLayout, SwarmConfig
from servent.proto.swarm.filler import RequestFiller
from servent.proto.swarm.peer import PeerState
from servent.proto.swarm.provenance import BanList, PeerIdentity, Provenance
from servent.proto.swarm.uploads import UploadSlots

__all__ = ["ForeignEventHandler", "PieceLayout", "SwarmConfig", "SwarmCore"]


#: Called for events the core leaves to its shell (handshakes, BEP 10 traffic).
ForeignEventHandler = Callable[[PeerState, Event, float], None]


class SwarmCore:
    """One torrent's swarm decisions; see the module docstring."""

    def __init__(
        self,
        layout: PieceLayout,
        have: Bitfield,
        *,
        wanted: Collection[int],
        priorities: Sequence[int] | None = None,
        complete: bool = False,
        config: SwarmConfig | None = None,
        rng: random.Random | None = None,
        hash_server: HashServer | None = None,
        foreign: ForeignEventHandler | None = None,
    ) -> None:
        self.layout = layout
        self.config = config = config or SwarmConfig()
        self.num_pieces = layout.num_pieces
        #: Verified pieces (shared with storage, which sets a bit when it writes a piece).
        self.have = have
        rng = rng or random.Random()
        self.picker = PiecePicker(
            self.num_pieces,
            layout.piece_length,
            rng=rng,
            piece_size=layout.piece_size,
            have=have,
            priorities=priorities,
            sequential=config.sequential,
            endgame_max_requesters=config.endgame_max_requesters,
        )
        choker = ChokerConfig(
            upload_slots=config.upload_slots,
            optimistic_slots=config.optimistic_slots,
            interval=config.choke_interval,
        )
        self.uploads = UploadSlots(rng=rng, config=choker)
        self.provenance = Provenance()
        self.bans = BanList()
        self.assembly = PieceAssembly(config.max_unverified_bytes)
        self._buffers = self.assembly.buffers  # read per block: one lookup fewer
        self._block_run = BlockRun(self.picker, self._buffers)
        self.filler = RequestFiller(self.picker, self.provenance, have)
        self.hash_server = hash_server
        self.foreign = foreign or _ignore
        #: Open peers, in the order they opened.
        self.peers: dict[PeerState, None] = {}
        #: Decisions for the shell, oldest first; the shell empties the list.
        self.actions: list[Action] = []
        self.complete = complete
        size = layout.piece_payload_size  # progress counts file bytes (BEP 47 pads left out)
        #: Some piece holds pad bytes: blocks' payload sizes must be computed one by one.
        self._padded = any(size(i) != layout.piece_size(i) for i in range(self.num_pieces))
        self.wanted_bytes = sum(size(i) for i in wanted)
        self.have_bytes = sum(size(i) for i in wanted if i in have)
        self.downloaded = 0
        self.uploaded = 0
        #: Payload bytes received and thrown away (duplicates, late blocks, failed pieces).
        self.wasted = 0
        self.hash_failures = 0
        self.down_meter = RateMeter()
        self.up_meter = RateMeter()
        self._handlers: dict[type, Callable[[PeerState, Event, float], None]] = {
            Request: self._on_request, Have: self._on_have, Piece: self._on_piece_event,
            BlocksReceived: self._on_blocks,
            HaveBitfield: self._on_pieces, HaveAll: self._on_pieces, HaveNone: self._on_pieces,
            Unchoke: self._on_unchoke, RejectRequest: self._on_reject,
            RequestsDropped: self._on_dropped, Snubbed: self._on_snubbed,
            Interested: self._on_interested, HashRequest: self._on_hash_request,
            NotInterested: _ignore, AllowedFast: _ignore, Choke: _ignore,
        }  # fmt: skip

    # ------------------------------------------------------------------ peers

    def peer_opened(self, peer: PeerState, now: float) -> None:
        """The handshake is done: the peer joins the picker and hears what we have."""
        peer.open = True
        peer.connected_at = now
        self.peers[peer] = None
        self.picker.add_peer(peer, Bitfield(self.num_pieces))
        conn = peer.conn
        have = self.have
        if conn.fast and have.all():
            conn.send(HaveAll())
        elif have.any():
            conn.send(HaveBitfield(have.to_bytes()))
        elif conn.fast:
            conn.send(HaveNone())

    def peer_closed(self, peer: PeerState) -> None:
        """The connection ended: its requested blocks are freed (received ones stay)."""
        if peer.closing is None:
            peer.closing = "closed"
        if peer in self.peers:  # (its value is None: ``pop``'s result cannot tell)
            del self.peers[peer]
            self.picker.remove_peer(peer)

    def close(self, peer: PeerState, reason: str, *, abort: bool = False) -> None:
        """Ask the shell to close ``peer``; the core ignores it from now on."""
        if peer.closing is None:
            peer.closing = reason
            self.actions.append(ClosePeer(peer, reason, abort))

    def ban(self, identity: PeerIdentity, reason: str) -> None:
        self.bans.ban(identity)
        self.actions.append(PeerBanned(identity, reason))
        for peer in list(self.peers):
            host, port, peer_id = peer.identity
            if self.bans.is_banned(host, port, peer_id or None):
                self.close(peer, f"banned: {reason}", abort=True)

    # ------------------------------------------------------------------ events

    def peer_events(self, peer: PeerState, events: list[Event], now: float) -> None:
        """The events of one read from ``peer``, in order; then its requests are topped up."""
        handlers = self._handlers
        foreign = self.foreign
        got_blocks = False
        for event in events:
            handler = handlers.get(type(event))
            if handler is None:
                foreign(peer, event, now)
            else:
                handler(peer, event, now)
                got_blocks = got_blocks or type(event) in _BLOCK_EVENTS
            if peer.closing is not None:
                return
        if got_blocks or not peer.conn.outstanding_count:
            self.fill(peer, now)

    def _on_request(self, peer: PeerState, event: Event, now: float) -> None:
        assert isinstance(event, Request)
        reason = UploadSlots.admit(peer, event, self.have, self.layout.piece_size)
        if reason is not None:
            self.close(peer, reason)

    def _on_have(self, peer: PeerState, event: Event, now: float) -> None:
        assert isinstance(event, Have)
        index = event.index
        if not peer.pieces.set(index):
            return
        self.picker.peer_has(peer, index)
        if peer.pieces.all():
            peer.has_all = True
            if self.complete:
                self.close(peer, "both are seeds")
                return
        conn = peer.conn
        if (
            not conn.am_interested
            and not self.complete
            and index not in self.have
            and self.picker.priority(index) > 0
        ):
            conn.send(Interested())

    def _on_pieces(self, peer: PeerState, event: Event, now: float) -> None:
        if isinstance(event, HaveAll):
            peer.has_all = True
            peer.pieces = Bitfield(self.num_pieces, all_set=True)
        elif isinstance(event, HaveNone):
            peer.pieces = Bitfield(self.num_pieces)
        else:
            assert isinstance(event, HaveBitfield)
            peer.pieces = Bitfield.from_bytes(event.bits, self.num_pieces)
            peer.has_all = peer.pieces.all()
        peer.sent_at.clear()
        self.picker.add_peer(peer, None if peer.has_all else peer.pieces)
        if self.complete and peer.has_all:
            self.close(peer, "both are seeds")
            return
        self.update_interest(peer)

    def _on_unchoke(self, peer: PeerState, event: Event, now: float) -> None:
        peer.snubbed = False

    def _on_reject(self, peer: PeerState, event: Event, now: float) -> None:
        assert isinstance(event, RejectRequest)
        peer.sent_at.pop((event.index, event.begin), None)
        self.picker.on_request_failed(peer, Request(event.index, event.begin, event.length))

    def _on_dropped(self, peer: PeerState, event: Event, now: float) -> None:
        assert isinstance(event, RequestsDropped)
        for request in event.requests:
            peer.sent_at.pop((request.index, request.begin), None)
            self.picker.on_request_failed(peer, request)

    def _on_snubbed(self, peer: PeerState, event: Event, now: float) -> None:
        assert isinstance(event, Snubbed)
        peer.snubbed = True
        for request in event.outstanding:
            peer.sent_at.pop((request.index, request.begin), None)
            peer.conn.send(Cancel(request.index, request.begin, request.length))
            self.picker.on_request_failed(peer, request)

    def _on_interested(self, peer: PeerState, event: Event, now: float) -> None:
        if self.uploads.has_free_slot():
            self.run_choker(now)

    def _on_hash_request(self, peer: PeerState, event: Event, now: float) -> None:
        """Piece layers for peers that joined a v2 torrent by magnet (BEP 52)."""
        assert isinstance(event, HashRequest)
        hashes = None if self.hash_server is None else self.hash_server.answer(event)
        fields = (
            event.pieces_root, event.base_layer, event.index, event.length, event.proof_layers,
        )  # fmt: skip
        peer.conn.send(HashReject(*fields) if hashes is None else Hashes(*fields, hashes))

    def _on_blocks(self, peer: PeerState, event: Event, now: float) -> None:
        assert type(event) is BlocksReceived
        self.blocks(peer, event.blocks, now)

    def _on_piece_event(self, peer: PeerState, event: Event, now: float) -> None:
        assert isinstance(event, Piece)
        self.deliver_block(peer, event, now)

    # ------------------------------------------------------------------ blocks

    def deliver_block(self, source: object, piece: Piece, now: float) -> None:
        """A block as a :class:`Piece` (from a web seed, or a connection without the fast path)."""
        requested_at = source.sent_at.pop((piece.index, piece.begin), None)  # type: ignore[attr-defined]
        self.block(source, piece.index, piece.begin, piece.block, requested_at, now=now)  # type: ignore[arg-type]

    def block(
        self, peer: PeerState, index: int, begin: int, block: bytes | memoryview,
        requested_at: float | None, *, now: float,
    ) -> None:  # fmt: skip
        """One received block (from a web seed, or a driver with a per-block sink)."""
        self.blocks(peer, [(index, begin, block, requested_at)], now)

    def blocks(self, peer: PeerState, blocks: Sequence[ReceivedBlock], now: float) -> None:
        """Blocks received one after the other: :meth:`block` for each, counted once (the
        pipeline, the counters and the rate meter see the run's bytes, all at ``now``)."""
        run = self._block_run.feed(blocks, peer, self._one_block)
        payload_total = run[0]  # pad bytes left out of the counts (one call per block)
        if self._padded:
            payload = self.layout.block_payload_size
            payload_total = sum(payload(i, b, len(data)) for i, b, data, _ in blocks)
        self._count(peer, run, payload_total, now)

    def read_blocks(self, peer: PeerState, data: memoryview, now: float) -> int:
        """A read's leading blocks, into their pieces (the lane, ``PeerConnection.take_blocks``)."""
        if self._padded:  # pad bytes counted per block: the run as a list
            blocks, taken = peer.conn.read_blocks(data, now)
            self.blocks(peer, blocks, now)
        else:
            taken, run = self._block_run.read(peer, data, now, self._one_block)
            self._count(peer, run, run[0], now)
        if taken:
            self.fill(peer, now)
        return taken

    def _count(self, peer: PeerState, run: RunCounts, payload_total: int, now: float) -> None:
        received, wasted, latest = run
        self.wasted += wasted
        peer.pipeline.on_block(received, now, latest)  # the latest request: the latency sample
        peer.downloaded += received
        self.downloaded += payload_total
        self.down_meter.add(payload_total, now)

    def _one_block(self, peer: PeerState, index: int, begin: int, block: ReceivedData) -> int:
        """A block the C path left (or all of them without it); returns the bytes wasted."""
        length = len(block)
        outcome = self.picker.block_received(peer, index, begin, length)
        if outcome is not ACCEPTED and not outcome.accepted:
            return self.layout.block_payload_size(index, begin, length)
        buffer = self._buffers.get(index)
        if buffer is None:
            buffer = self.assembly.buffer(index, self.picker.piece_size(index))
        buffer[begin : begin + length] = block
        if outcome is not ACCEPTED:  # it completes its piece, or cancels duplicates
            if outcome.cancels:
                self._cancel(outcome.cancels)
            if outcome.piece_complete:
                self._piece_complete(index)
        return 0

    def _cancel(self, cancels: Sequence[tuple[object, Request]]) -> None:
        """Endgame: the block came; the other peers asked for it hear a cancel."""
        for other, request in cancels:
            other.sent_at.pop((request.index, request.begin), None)  # type: ignore[attr-defined]
            conn = getattr(other, "conn", None)  # a web seed has no wire
            if conn is not None:
                conn.send(Cancel(request.index, request.begin, request.length))

    def _piece_complete(self, index: int) -> None:
        sources: dict[int, PeerIdentity] = self.picker.block_sources(index, _IDENTITY)
        data = self.assembly.take_complete(index)
        if self.assembly.should_hold_off():
            self.assembly.held_off = True
            self.actions.append(HoldOff(True))
        self.actions.append(VerifyPiece(index, data, sources))

    # ------------------------------------------------------------------ verification

    def piece_checked(
        self, index: int, data: bytearray, sources: dict[int, PeerIdentity], ok: bool, now: float
    ) -> None:
        """The shell verified (and, if good, stored) a piece from a :class:`VerifyPiece`."""
        self._release(data, keep=True)
        if ok:
            self.picker.on_piece_verified(index)
            if self.picker.priority(index) > 0:
                self.have_bytes += self.layout.piece_payload_size(index)
            guilty = self.provenance.piece_verified(index, data, sources)
            have = Have(index)
            for peer in self.peers:
                if index not in peer.pieces and peer.closing is None:
                    peer.conn.send(have)
            for identity in guilty:
                self.ban(identity, f"sent a corrupt block of piece {index}")
            if not self.complete and self.picker.is_complete():
                self._on_complete()
        else:
            self.hash_failures += 1
            self.wasted += self.layout.piece_payload_size(index)
            self.picker.on_piece_failed(index)
            for identity in self.provenance.piece_failed(index, data, sources):
                self.ban(identity, f"sent piece {index}, which failed its hash")
        if not self.complete:
            for peer in list(self.peers):
                self.fill(peer, now)

    def piece_abandoned(self, data: bytearray) -> None:
        """Verification of a piece could not finish (storage failed): forget its bytes."""
        self._release(data, keep=False)

    def _release(self, data: bytearray, *, keep: bool) -> None:
        if self.assembly.checked(data, keep=keep and not self.complete):
            self.assembly.held_off = False
            self.actions.append(HoldOff(False))

    def _on_complete(self) -> None:
        self.complete = True
        self.assembly.drop_spares()
        for peer in list(self.peers):
            if peer.has_all:
                self.close(peer, "both are seeds")
            elif peer.conn.am_interested and peer.closing is None:
                peer.conn.send(NotInterested())
        self.actions.append(Completed())

    # ------------------------------------------------------------------ decisions

    def tick(self, now: float, elapsed: float) -> None:
        """The periodic timer: rates, a choking round when due, interest and requests."""
        for peer in self.peers:
            peer.update_rates(elapsed, now)
        if self.uploads.is_due(now):
            self.run_choker(now)
        if not self.complete:
            for peer in list(self.peers):
                self.update_interest(peer)
                self.fill(peer, now)

    def run_choker(self, now: float) -> None:
        peers = [peer for peer in self.peers if peer.closing is None]
        self.uploads.run(peers, now, seeding=self.complete)

    def update_interest(self, peer: PeerState) -> None:
        if peer.closing is not None:
            return
        conn = peer.conn
        interesting = not self.complete and self.picker.peer_is_interesting(peer)
        if interesting and not conn.am_interested:
            conn.send(Interested())
        elif not interesting and conn.am_interested:
            conn.send(NotInterested())

    def fill(self, peer: PeerState, now: float) -> None:
        """Top the peer's request pipeline up to the depth its rate and latency call for."""
        if peer.open and peer.closing is None:
            self.filler.fill(peer, now)

    def set_deadlines(self, deadlines: dict[int, float], now: float) -> None:
        """A stream's pieces by when (``now``'s clock): first in line; a seek's urgent
        piece displaces queued background requests (see ``PiecePicker.displaced_requests``)."""
        self.picker.clear_deadlines()
        for index, when in deadlines.items():
            self.picker.set_deadline(index, when)
        for peer in list(self.peers):
            for request in self.picker.displaced_requests(peer, now):
                peer.sent_at.pop((request.index, request.begin), None)
                peer.conn.send(Cancel(request.index, request.begin, request.length))
                self.picker.on_request_failed(peer, request)
            self.fill(peer, now)

    def set_priorities(
        self, priorities: Sequence[int], wanted: Collection[int], now: float
    ) -> None:
        """Pieces wanted changed while running: cancel what is no longer wanted, refill."""
        self.picker.set_priorities(priorities)
        size = self.layout.piece_payload_size
        self.wanted_bytes = sum(size(i) for i in wanted)
        self.have_bytes = sum(size(i) for i in wanted if i in self.have)
        for peer in self.peers:
            for request in self.picker.requests_of(peer):
                if request.index not in wanted:
                    peer.sent_at.pop((request.index, request.begin), None)
                    peer.conn.send(Cancel(request.index, request.begin, request.length))
                    self.picker.on_request_failed(peer, request)
        if self.picker.is_complete():
            if not self.complete:
                self._on_complete()
        elif self.complete:
            self.complete = False
            self.actions.append(Reopened())
        for peer in list(self.peers):
            self.update_interest(peer)
            self.fill(peer, now)


#: Events that bring blocks (after them, the peer's requests are topped up).
_BLOCK_EVENTS = (Piece, BlocksReceived)
#: A block source's identity (the provenance of a piece's blocks, one map call per piece).
_IDENTITY = attrgetter("identity")


def _ignore(peer: PeerState, event: Event, now: float) -> None:
    """Events that need nothing from the core (choke state lives in the connection)."""
