"""A swarm of BitTorrent peers in virtual time, on an in-memory network.

Every peer runs the production swarm core (:class:`~servent.proto.swarm.SwarmCore`,
the class ``TorrentSession`` drives) over real sans-IO
:class:`~servent.proto.peerwire.PeerConnection` pairs: the wire bytes are the
real ones.  What is modelled: the network (one-way latency per pair of peers,
a serialising upload link per peer with its own rate, byte order kept per
connection), storage (a piece is verified and written after a short delay;
the payload is zeros, so nothing is hashed), discovery (a newcomer dials random
peers, as a tracker would give them) and churn (leechers leave without notice
and fresh ones join).  Events sit on one heap ordered by virtual time.

Figures: completion of the leechers that stayed to the end or finished, the
median time from joining to completion, and the share of downloaded payload
thrown away (endgame duplicates, late blocks, failed pieces).
"""

from __future__ import annotations

import heapq
import itertools
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from servent.codec.bitfield import Bitfield
from servent.proto.peerwire import (
    ConnectionTimedOut,
    Event,
    HandshakeReceived,
    PeerConnection,
    Piece,
)
from servent.proto.peerwire.connection import BlockSink
from servent.proto.swarm import (
    ClosePeer,
    Completed,
    PeerState,
    SwarmConfig,
    SwarmCore,
    VerifyPiece,
)

__all__ = ["SimLayout", "SwarmReport", "SwarmSimConfig", "SwarmSimulation"]

KIB = 1024
MIB = 1024 * KIB
BLOCK = 16 * KIB
_ZEROS_VIEW = memoryview(bytes(BLOCK))
_INFO_HASH = bytes(range(20))


@dataclass(frozen=True, slots=True)
class SwarmSimConfig:
    peers: int = 50
    #: Share of the leechers that leave per virtual minute (each replaced by a newcomer).
    churn: float = 0.0
    seed: int = 1
    #: Initial seeders (``None``: one per 20 peers, at least one).
    seeders: int | None = None
    size: int = 4 * MIB
    piece_length: int = 256 * KIB
    #: Upload rates (bytes/s) leechers draw from; seeders use the largest.
    upload_rates: tuple[float, ...] = (32 * KIB, 128 * KIB, 512 * KIB)
    #: One-way latency between two peers is drawn from this range (seconds).
    latency: tuple[float, float] = (0.01, 0.15)
    #: Connections a peer keeps (it dials random peers until it has ``dial_target``).
    max_connections: int = 40
    dial_target: int = 20
    #: The swarm core's knobs, the same for every peer (what the simulator tunes).
    swarm: SwarmConfig = field(default_factory=SwarmConfig)
    tick: float = 1.0
    verify_delay: float = 0.005
    #: Newcomers join (to replace leavers) until this virtual time.
    churn_until: float = 300.0
    #: The run stops at this virtual time even if some leechers are unfinished.
    duration: float = 1800.0


@dataclass(frozen=True, slots=True)
class SimLayout:
    """Piece sizes of the simulated torrent (the part of a Metainfo the core reads)."""

    size: int
    piece_length: int

    @property
    def num_pieces(self) -> int:
        return -(-self.size // self.piece_length)

    def piece_size(self, index: int) -> int:
        return min(self.piece_length, self.size - index * self.piece_length)

    def piece_payload_size(self, index: int) -> int:
        return self.piece_size(index)

    def block_payload_size(self, index: int, begin: int, length: int) -> int:
        return length


@dataclass(slots=True)
class SwarmReport:
    leechers: int
    completed: int
    left_unfinished: int
    completion_times: list[float]
    downloaded: int
    wasted: int
    virtual_time: float
    events: int

    @property
    def completed_share(self) -> float:
        counted = self.leechers - self.left_unfinished
        return self.completed / counted if counted else 1.0

    @property
    def median_completion(self) -> float:
        return statistics.median(self.completion_times) if self.completion_times else float("nan")

    @property
    def wasted_share(self) -> float:
        return self.wasted / self.downloaded if self.downloaded else 0.0


class _End:
    """One side of a connection: the owner's view of the remote peer."""

    __slots__ = ("arrival", "closed", "other", "owner", "state")

    def __init__(self, owner: _SimPeer, state: PeerState) -> None:
        self.owner = owner
        self.state = state
        self.other: _End | None = None
        self.closed = False
        #: When the last bytes sent from this end arrive (keeps the byte order).
        self.arrival = 0.0


@dataclass(eq=False, slots=True)
class _SimPeer:
    number: int
    core: SwarmCore
    upload_rate: float
    joined_at: float
    seeder: bool
    ends: dict[int, _End] = field(default_factory=dict)
    alive: bool = True
    done_at: float | None = None
    uplink_busy: bool = False
    cursor: int = 0
    last_tick: float = 0.0


class SwarmSimulation:
    """Runs a :class:`SwarmSimConfig` to completion (or its duration) in virtual time."""

    def __init__(self, config: SwarmSimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.layout = SimLayout(config.size, config.piece_length)
        self.now = 0.0
        self.events = 0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[object, ...]]] = []
        self._seq = itertools.count()
        self._dirty: list[_End] = []
        self._pending: list[Event] = []
        self._blocks_seen = False
        self.peers: dict[int, _SimPeer] = {}
        self._all: list[_SimPeer] = []
        self._latency: dict[int, float] = {}
        #: Leechers present and not complete (the run ends when none are left).
        self._unfinished = 0

    # ------------------------------------------------------------------ running

    def schedule(self, when: float, action: Callable[..., None], *args: object) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), action, args))

    def run(self) -> SwarmReport:
        config = self.config
        seeders = config.seeders if config.seeders is not None else max(1, config.peers // 20)
        for number in range(config.peers):
            self._join(seeder=number < seeders)
        if config.churn > 0:
            self.schedule(self._next_churn(), self._churn)
        heap = self._heap
        while heap:
            when, _, action, args = heapq.heappop(heap)
            if when > config.duration:
                break
            self.now = when
            self.events += 1
            action(*args)
            if self._dirty:
                self._send_dirty()
            if not self._unfinished and self._finished():
                break
        return self._report()

    def _finished(self) -> bool:
        churning = self.config.churn > 0 and self.now < self.config.churn_until
        return not self._unfinished and not churning

    def _report(self) -> SwarmReport:
        leechers = [p for p in self._all if not p.seeder]
        done = [p for p in leechers if p.done_at is not None]
        return SwarmReport(
            leechers=len(leechers),
            completed=len(done),
            left_unfinished=sum(1 for p in leechers if not p.alive and p.done_at is None),
            completion_times=[p.done_at - p.joined_at for p in done if p.done_at is not None],
            downloaded=sum(p.core.downloaded for p in self._all),
            wasted=sum(p.core.wasted for p in self._all),
            virtual_time=self.now,
            events=self.events,
        )

    # ------------------------------------------------------------------ peers

    def _join(self, *, seeder: bool) -> _SimPeer:
        config = self.config
        layout = self.layout
        have = Bitfield(layout.num_pieces, all_set=seeder)
        rates = config.upload_rates
        number = len(self._all)
        peer = _SimPeer(
            number=number,
            core=SwarmCore(
                layout,
                have,
                wanted=range(layout.num_pieces),
                complete=seeder,
                config=config.swarm,
                rng=random.Random(self.rng.random()),
            ),
            upload_rate=max(rates) if seeder else self.rng.choice(rates),
            joined_at=self.now,
            seeder=seeder,
            last_tick=self.now,
        )
        peer.core.foreign = self._foreign_handler(peer)
        self.peers[number] = peer
        self._all.append(peer)
        self._unfinished += not seeder
        self.schedule(self.now + self.rng.uniform(0, config.tick), self._tick, peer)
        return peer

    def _leave(self, peer: _SimPeer) -> None:
        peer.alive = False
        del self.peers[peer.number]
        self._unfinished -= not peer.seeder and peer.done_at is None
        for end in list(peer.ends.values()):
            self._disconnect(end)

    def _churn(self) -> None:
        leechers = [p for p in self.peers.values() if not p.seeder]
        if leechers:
            self._leave(self.rng.choice(leechers))
            self._dial_some(self._join(seeder=False))
        if self.now < self.config.churn_until:
            self.schedule(self._next_churn(), self._churn)

    def _next_churn(self) -> float:
        rate = self.config.churn * max(1, self.config.peers) / 60.0
        return self.now + self.rng.expovariate(rate)

    def _delay(self, a: _SimPeer, b: _SimPeer) -> float:
        key = min(a.number, b.number) * 1_000_003 + max(a.number, b.number)
        delay = self._latency.get(key)
        if delay is None:
            delay = self._latency[key] = self.rng.uniform(*self.config.latency)
        return delay

    # ------------------------------------------------------------------ connections

    def _dial_some(self, peer: _SimPeer) -> None:
        config = self.config
        want = config.dial_target - len(peer.ends)
        if want <= 0 or not peer.alive:
            return
        candidates = [
            other
            for other in self.rng.sample(list(self.peers.values()), min(len(self.peers), want * 3))
            if other is not peer
            and other.number not in peer.ends
            and len(other.ends) < config.max_connections
            and not (other.core.complete and peer.core.complete)
        ]
        for other in candidates[:want]:
            self._connect(peer, other)

    def _connect(self, a: _SimPeer, b: _SimPeer) -> None:
        end_a = self._new_end(a, b, initiator=True)
        end_b = self._new_end(b, a, initiator=False)
        end_a.other, end_b.other = end_b, end_a
        self._dirty.append(end_a)  # the initiator's handshake

    def _new_end(self, owner: _SimPeer, remote: _SimPeer, *, initiator: bool) -> _End:
        conn = PeerConnection(
            peer_id=owner.number.to_bytes(4, "big") * 5,
            info_hash=_INFO_HASH,
            initiator=initiator,
            num_pieces=self.layout.num_pieces,
            now=self.now,
        )
        number = remote.number
        address = (f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}", 6881)
        state = PeerState(conn, self.layout.num_pieces, self.now, dialled=None, address=address)
        end = _End(owner, state)
        owner.ends[remote.number] = end
        conn.on_output = lambda: self._dirty.append(end)
        conn.block_sink = self._block_sink(end)
        return end

    def _disconnect(self, end: _End) -> None:
        """Close both sides: the remote owner hears of it after the latency."""
        if end.closed:
            return
        end.closed = True
        end.owner.ends.pop(end.other.owner.number if end.other else -1, None)
        end.owner.core.peer_closed(end.state)
        end.state.conn.close()
        other = end.other
        if other is not None and not other.closed:
            self.schedule(self.now + self._delay(end.owner, other.owner), self._disconnect, other)

    def _send_dirty(self) -> None:
        dirty = self._dirty
        self._dirty = []
        for end in dirty:
            self._transmit(end, 0.0)

    def _transmit(self, end: _End, serialise: float) -> None:
        """Move the end's queued bytes to the other side (after ``serialise`` + latency)."""
        chunks = end.state.conn.chunks_to_send()
        other = end.other
        if not chunks or end.closed or other is None or other.closed:
            return
        data = b"".join(chunks)
        arrival = max(self.now + serialise + self._delay(end.owner, other.owner), end.arrival)
        end.arrival = arrival
        self.schedule(arrival, self._arrive, other, data)

    def _arrive(self, end: _End, data: bytes) -> None:
        if end.closed:
            return
        conn = end.state.conn
        conn.receive_data(data, self.now)
        self._drain(end)

    def _drain(self, end: _End) -> None:
        conn = end.state.conn
        core = end.owner.core
        self._pending = []
        self._blocks_seen = False
        while (event := conn.next_event()) is not None:
            self._pending.append(event)  # re-read: the block sink may hand the list over
        events = self._pending
        self._pending = []
        if events:
            core.peer_events(end.state, events, self.now)
        if self._blocks_seen and end.state.closing is None:
            core.fill(end.state, self.now)  # one read's blocks are in: more requests
        self._after_feed(end.owner, end)
        if any(type(e) is ConnectionTimedOut for e in events):
            self._disconnect(end)

    def _block_sink(self, end: _End) -> BlockSink:
        def sink(
            index: int, begin: int, block: bytes | memoryview, requested_at: float | None
        ) -> None:
            pending = self._pending
            if pending:  # events parsed before this block go first
                self._pending = []
                end.owner.core.peer_events(end.state, pending, self.now)
            if end.state.closing is None:
                self._blocks_seen = True
                end.owner.core.block(end.state, index, begin, block, requested_at, now=self.now)

        return sink

    def _foreign_handler(self, peer: _SimPeer) -> Callable[[PeerState, Event, float], None]:
        def foreign(state: PeerState, event: Event, now: float) -> None:
            if type(event) is HandshakeReceived:
                peer.core.peer_opened(state, now)

        return foreign

    # ------------------------------------------------------------------ the shell's duties

    def _after_feed(self, peer: _SimPeer, fed: _End | None = None) -> None:
        """Carry out the core's actions and start the upload link if requests wait."""
        core = peer.core
        actions = core.actions
        while actions:
            batch = actions[:]
            actions.clear()
            for action in batch:
                if type(action) is VerifyPiece:
                    assert isinstance(action, VerifyPiece)
                    self.schedule(self.now + self.config.verify_delay, self._verified, peer, action)
                elif type(action) is ClosePeer:
                    assert isinstance(action, ClosePeer)
                    end = next((e for e in peer.ends.values() if e.state is action.peer), None)
                    if end is not None:
                        self._disconnect(end)
                elif type(action) is Completed and peer.done_at is None and not peer.seeder:
                    peer.done_at = self.now
                    self._unfinished -= 1
        if not peer.uplink_busy and fed is not None and fed.state.uploads:
            peer.uplink_busy = True
            self.schedule(self.now, self._upload, peer)

    def _verified(self, peer: _SimPeer, action: VerifyPiece) -> None:
        if not peer.alive:
            return
        peer.core.have.set(action.index)  # what storage does once the piece is written
        peer.core.piece_checked(action.index, action.data, action.sources, True, self.now)
        self._after_feed(peer)

    def _upload(self, peer: _SimPeer) -> None:
        """The upload link is free: send the next requested block, round robin over peers."""
        if not peer.alive:
            return
        ends = list(peer.ends.values())
        for offset in range(len(ends)):
            end = ends[(peer.cursor + offset) % len(ends)]
            state = end.state
            while state.uploads:
                request = state.uploads.popleft()
                if not state.conn.is_request_pending(request):
                    continue
                peer.cursor = (peer.cursor + offset + 1) % len(ends)
                state.conn.send(Piece(request.index, request.begin, _ZEROS_VIEW[: request.length]))
                state.uploaded += request.length
                peer.core.uploaded += request.length
                serialise = request.length / peer.upload_rate
                self._transmit(end, serialise)  # behind what the link already carries
                self.schedule(self.now + serialise, self._upload, peer)
                return
        peer.uplink_busy = False

    def _tick(self, peer: _SimPeer) -> None:
        if not peer.alive:
            return
        now = self.now
        peer.core.tick(now, now - peer.last_tick)
        peer.last_tick = now
        for end in list(peer.ends.values()):
            conn = end.state.conn
            due = conn.next_timer()
            if due is not None and due <= now and not end.closed:
                conn.handle_timer(now)
                self._drain(end)
        self._dial_some(peer)
        self._after_feed(peer)
        self.schedule(now + self.config.tick, self._tick, peer)
