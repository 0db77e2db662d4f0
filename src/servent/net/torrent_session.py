"""The owner of one torrent while it runs: peers, requests, pieces, uploads.

One :class:`TorrentSession` per torrent.  :meth:`TorrentSession.run` is its
owner task: it holds a ``TaskGroup`` with every task of the torrent (dials,
per-peer uploaders, piece verifications) and a periodic tick (choker,
replacing dropped peers, rates).  Peer connections hand their events to
:meth:`peer_events` synchronously, on the same event loop, so the torrent's
state is only ever changed by one thread between two awaits: no locks.

The download path per received block is: picker bookkeeping, one copy into
the piece's buffer; a complete piece goes to ``TorrentStorage.write_piece``
(hashed in a worker thread, written only if valid).  A piece that fails names
its senders through :mod:`~servent.net.provenance` (ban or parole) and is
fetched again.  Requests are topped up once per socket read per peer, to a
depth from the peer's measured rate and latency.

Around that core, each in its own module: dialling, accepting and closing
peers (:mod:`~servent.net.torrent_connections`, scored candidates and
message stream encryption), BEP 10 extensions (:mod:`~servent.net.peer_extensions`:
``ut_metadata`` serving and PEX), BEP 52 hash requests
(:mod:`~servent.proto.hash_serving`), idle-peer replacement
(:mod:`~servent.net.connection_manager`) and web seeds (:mod:`~servent.net.web_seed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from servent.codec.bitfield import Bitfield
from servent.codec.metainfo import Metainfo
from servent.errors import ServentError, StorageError
from servent.net.connection_manager import IdlePeerReplacer
from servent.net.encrypted_transport import DEFAULT_ENCRYPTION, parse_policy
from servent.net.known_peers import Address, KnownPeers
from servent.net.limits import GlobalLimits
from servent.net.peer_extensions import TorrentExtensions
from servent.net.peer_session import PeerSession
from servent.net.provenance import BanList, PeerIdentity, Provenance
from servent.net.swarm_peer import SwarmPeer
from servent.net.torrent_config import TorrentConfig, TorrentStatistics
from servent.net.torrent_connections import TorrentConnections
from servent.net.torrent_uploads import TorrentUploads
from servent.net.web_seed import WebSeed, run_web_seeds
from servent.proto.choker import Choker, ChokerConfig
from servent.proto.hash_serving import HashServer
from servent.proto.peer_admission import keeps_new_duplicate
from servent.proto.peerwire import (
    AllowedFast,
    Cancel,
    Choke,
    ConnectionState,
    Event,
    ExtensionHandshakeReceived,
    ExtensionMessage,
    HandshakeReceived,
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
    RejectRequest,
    Request,
    RequestsDropped,
    Snubbed,
    Unchoke,
    aria2_info_hash,
)
from servent.proto.picker import PiecePicker
from servent.proto.pipeline import top_up
from servent.proto.rate_meter import RateMeter
from servent.proto.ratelimit import TokenBucket
from servent.proto.session_extensions import session_registry
from servent.storage import TorrentStorage

__all__ = ["TorrentConfig", "TorrentSession", "TorrentStatistics"]

log = logging.getLogger(__name__)


class TorrentSession(TorrentUploads, TorrentConnections):
    """Runs one torrent; see the module docstring (connections: :class:`TorrentConnections`)."""

    def __init__(
        self,
        metainfo: Metainfo,
        storage: TorrentStorage,
        *,
        peer_id: bytes,
        config: TorrentConfig | None = None,
        limits: GlobalLimits | None = None,
        rng: random.Random | None = None,
        listen_port: int | None = None,
    ) -> None:
        self.metainfo = metainfo
        self.storage = storage
        self.peer_id = peer_id
        self.config = config or TorrentConfig()
        self.listen_port = listen_port
        self.loop = asyncio.get_running_loop()
        now = self.loop.time()
        self.limits = limits or GlobalLimits(
            max_connections=None, download_rate=None, upload_rate=None, now=now
        )
        self.info_hash = metainfo.wire_info_hash
        #: aria2 1.36 names hybrid torrents by another hash; accepted as an alias.
        self.aria2_alias = aria2_info_hash(metainfo.info_bytes) if metainfo.is_hybrid else None
        self.num_pieces = metainfo.num_pieces
        self._rng = rng or random.Random()
        wanted = storage.wanted_pieces()
        priorities = storage.piece_priorities()
        self.picker = PiecePicker(
            self.num_pieces,
            metainfo.piece_length,
            rng=self._rng,
            piece_size=metainfo.piece_size,
            have=storage.have,
            priorities=priorities,
            sequential=self.config.sequential,
        )
        self.choker = Choker(
            rng=self._rng, config=ChokerConfig(upload_slots=self.config.upload_slots)
        )
        self.known = KnownPeers(
            max_failures=self.config.max_dial_failures,
            reconnect_delay=self.config.reconnect_delay,
        )
        self.bans = BanList()
        self.encryption = parse_policy(self.config.encryption or DEFAULT_ENCRYPTION)
        self.replacer = IdlePeerReplacer()
        self.hash_server = HashServer(metainfo.piece_layers, metainfo.piece_length)
        #: Running web seeds (BEP 19), set by :func:`~servent.net.web_seed.run_web_seeds`.
        self.web_seeds: list[WebSeed] = []
        self._web_seed_task: asyncio.Task[None] | None = None
        self._piece_waiters: dict[int, list[asyncio.Future[bool]]] = {}
        self._dials: set[asyncio.Task[None]] = set()
        self.refused_incoming = 0
        self.evicted = 0
        self._incoming_listen: dict[SwarmPeer, Address] = {}
        #: Addresses that turned out to be this node (never dialled again).
        self.own_addresses: set[Address] = set()
        # BEP 27: a private torrent's peers come from its tracker only (no PEX).
        self.extension_registry = session_registry(pex=not metainfo.private)
        self.extensions = TorrentExtensions(
            metainfo.info_bytes,
            pex=not metainfo.private,
            add_peers=lambda found: self.add_peers(found, source="pex"),
            known=self.known,
            is_own_address=self.is_own_address,
        )
        self.provenance = Provenance()
        self.download_bucket = TokenBucket(self.config.download_rate, now)
        self.upload_bucket = TokenBucket(self.config.upload_rate, now)
        self.peers: dict[PeerSession, SwarmPeer] = {}
        # Progress counts real file bytes (BEP 47 pad bytes left out), as users do.
        size = metainfo.piece_payload_size
        self.wanted_bytes = sum(size(i) for i in wanted)
        self.have_bytes = sum(size(i) for i in storage.have if i in wanted)
        self.downloaded = 0
        self.uploaded = 0
        self.hash_failures = 0
        self.downloaded_from: dict[str, int] = {}
        self.uploaded_to: dict[str, int] = {}
        self.error: BaseException | None = None
        self._buffers: dict[int, bytearray] = {}
        self._spare_buffers: list[bytearray] = []
        self._unverified = 0
        self._held_off = False
        self._complete = asyncio.Event()
        self._done = asyncio.Event()
        self._settled = asyncio.Event()  # complete, or stopped
        self._progressed = asyncio.Event()  # replaced after each verified piece
        self._stop = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._last_tick = now
        #: Payload rates as users see them, counted as bytes move (see proto.rate_meter).
        self.down_meter = RateMeter()
        self.up_meter = RateMeter()
        if storage.is_complete():
            self._complete.set()
            self._settled.set()

    # ------------------------------------------------------------------ API

    @property
    def complete(self) -> bool:
        return self._complete.is_set()

    async def wait_complete(self) -> None:
        """Until every wanted piece is verified; raises the error that stopped the torrent."""
        await self._settled.wait()
        if not self._complete.is_set():
            raise self.error if self.error is not None else ServentError("torrent stopped")

    async def wait_settled(self) -> None:
        """Until the torrent is complete or stopped (no error raised; see :attr:`error`)."""
        await self._settled.wait()

    async def wait_progress(self) -> None:
        """Until the next piece is verified (or the torrent stops)."""
        await self._progressed.wait()

    def piece_outcome(self, index: int) -> asyncio.Future[bool]:
        """Resolves with whether piece ``index`` passed its hash, the next time it is checked."""
        future: asyncio.Future[bool] = self.loop.create_future()
        self._piece_waiters.setdefault(index, []).append(future)
        return future

    def deliver_block(self, source: object, piece: Piece, now: float) -> None:
        """A block from a source other than a peer connection (a web seed)."""
        self._on_block(source, piece, now)  # type: ignore[arg-type]

    async def wait_have(self, have_bytes: int) -> None:
        """Until at least ``have_bytes`` of wanted data are verified (or the torrent stopped)."""
        while self.have_bytes < have_bytes and not self._settled.is_set():
            await self._progressed.wait()

    def stop(self) -> None:
        """Ask :meth:`run` to close every connection and return."""
        self._stop.set()

    def set_file_priorities(self, priorities: tuple[int, ...] | list[int]) -> None:
        """Change what is downloaded while the torrent runs (0 = do not download).

        Why here and not by a restart: peers stay connected.  Storage records the
        new priorities; the picker, the interest sent to each peer and the
        wanted/have figures follow; requests for pieces no longer wanted are
        cancelled; a torrent that becomes complete (or incomplete) says so.
        """
        if len(priorities) != len(self.metainfo.files):
            raise ValueError("one priority per file (pad files included) is required")
        for index, priority in enumerate(priorities):
            self.storage.set_file_priority(index, max(priority, 0))
        wanted = self.storage.wanted_pieces()
        self.picker.set_priorities(self.storage.piece_priorities())
        size = self.metainfo.piece_payload_size
        have = self.storage.have
        self.wanted_bytes = sum(size(i) for i in wanted)
        self.have_bytes = sum(size(i) for i in have if i in wanted)
        for peer in self.open_peers:
            for request in self.picker.requests_of(peer):
                if request.index not in wanted:
                    peer.sent_at.pop((request.index, request.begin), None)
                    peer.session.send(Cancel(request.index, request.begin, request.length))
                    self.picker.on_request_failed(peer, request)
        if self.picker.is_complete():
            if not self.complete:
                self._on_complete()
        elif self.complete and not self._done.is_set():
            self._complete.clear()
            self._settled.clear()
        now = self.loop.time()
        for peer in self.open_peers:
            self._update_interest(peer)
            self._fill(peer, now)
            peer.session.schedule_flush()

    @property
    def open_peers(self) -> list[SwarmPeer]:
        return [peer for peer in self.peers.values() if peer.open]

    def all_peers_failed(self) -> bool:
        """Nobody connected, nobody being dialled, every known address given up on."""
        return not self.peers and self.known.exhausted()

    def statistics(self) -> TorrentStatistics:
        return TorrentStatistics(
            wanted_bytes=self.wanted_bytes,
            have_bytes=self.have_bytes,
            downloaded=self.downloaded,
            uploaded=self.uploaded,
            download_rate=self.down_meter.rate(self.loop.time()),
            upload_rate=self.up_meter.rate(self.loop.time()),
            peers=len(self.open_peers),
            complete=self.complete,
            hash_failures=self.hash_failures,
            banned=len(self.bans),
            downloaded_from=self._per_peer(self.downloaded_from, "downloaded"),
            uploaded_to=self._per_peer(self.uploaded_to, "uploaded"),
        )

    def _per_peer(self, closed: dict[str, int], counter: str) -> dict[str, int]:
        totals = dict(closed)
        if counter == "downloaded":
            for seed in self.web_seeds:
                if seed.downloaded:
                    totals[seed.url] = seed.downloaded
        for peer in self.peers.values():
            count: int = getattr(peer, counter)
            if count:
                totals[peer.label] = totals.get(peer.label, 0) + count
        return totals

    # ------------------------------------------------------------------ owner task

    async def run(self) -> None:
        """The torrent's owner task: returns after :meth:`stop` or a fatal error."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                if self.config.web_seeds and self.metainfo.web_seeds and not self.complete:
                    self._web_seed_task = tasks.create_task(run_web_seeds(self), name="web seeds")
                self._tick()
                while not self._stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), self.config.tick_interval)
                    self._tick()
                self._close_all("torrent stopped")
        except* StorageError as group:
            self.error = group.exceptions[0]
            log.error("torrent %s stopped: %s", self.metainfo.name, self.error)
        finally:
            self._tasks = None
            self._close_all("torrent stopped")
            self._done.set()
            self._settled.set()
            self._progressed.set()

    def _spawn(self, coro: object, name: str) -> None:
        tasks = self._tasks
        if tasks is None:
            coro.close()  # type: ignore[attr-defined]
            return
        tasks.create_task(coro, name=name)  # type: ignore[arg-type]

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            log.error("torrent %s failed: %s", self.metainfo.name, exc)
        self._stop.set()

    def _close_all(self, reason: str) -> None:
        if self._web_seed_task is not None:
            self._web_seed_task.cancel()
        for dial in list(self._dials):
            dial.cancel()
        for session, peer in list(self.peers.items()):
            if peer.uploader is not None:
                peer.uploader.cancel()
            session.close(reason)

    def _tick(self) -> None:
        now = self.loop.time()
        elapsed = now - self._last_tick
        self._last_tick = now
        for peer in self.open_peers:
            peer.update_rates(elapsed, now)
        due = self.choker.next_timer()
        if due is None or now >= due:
            self._run_choker(now)
        self._dial_due(now)
        self.replacer.tick(self, now, self._room())
        self.extensions.tick(self.open_peers, now)
        if not self.complete:
            for peer in self.open_peers:
                self._update_interest(peer)
                self._fill(peer, now)

    # ------------------------------------------------------------------ events

    def peer_events(self, session: PeerSession, events: list[Event]) -> None:
        peer = self.peers.get(session)
        if peer is None:
            return
        now = self.loop.time()
        got_blocks = False
        for event in events:
            kind = type(event)
            if kind is Piece:
                self._on_block(peer, event, now)  # type: ignore[arg-type]
                got_blocks = True
            elif kind is Request:
                self._on_request(peer, event)  # type: ignore[arg-type]
            elif kind is Have:
                self._on_have(peer, event.index)  # type: ignore[union-attr]
            elif kind is HandshakeReceived:
                self._on_open(peer, event, now)  # type: ignore[arg-type]
            else:
                self._on_other(peer, event, now)
            if session.is_closed or session.close_reason is not None:
                return
        if got_blocks or not peer.session.conn.outstanding_count:
            self._fill(peer, now)

    def _on_open(self, peer: SwarmPeer, event: HandshakeReceived, now: float) -> None:
        session = peer.session
        host, port = session.address
        peer_id = event.handshake.peer_id
        if self.bans.is_banned(host, port, peer_id):
            session.abort("banned")
            return
        twin = next((p for p in self.open_peers if p.identity[2] == peer_id), None)
        if twin is not None:
            if not keeps_new_duplicate(
                new_outgoing=peer.dialled is not None,
                old_outgoing=twin.dialled is not None,
                our_id=self.peer_id,
                their_id=peer_id,
            ):
                session.close("duplicate connection")
                return
            self._close_twin(twin, peer)
        peer.identity = (host, port, peer_id)
        peer.open = True
        peer.connected_at = now
        if peer.dialled is not None:
            self.known.connected(peer.dialled)
        self.picker.add_peer(peer, Bitfield(self.num_pieces))
        conn = session.conn
        have = self.storage.have
        if conn.fast and have.all():
            conn.send(HaveAll())
        elif have.any():
            conn.send(HaveBitfield(have.to_bytes()))
        elif conn.fast:
            conn.send(HaveNone())
        if conn.extension_protocol:
            extra: dict[str, object] = {"v": self.config.client_name}
            if self.listen_port:
                extra["p"] = self.listen_port
            extra.update(self.extensions.handshake_fields(session.address[0]))
            conn.send_extension_handshake(extra)
        session.schedule_flush()
        if self._tasks is not None:
            # A child of the torrent's task group; cancelled when the peer closes.
            host, port = session.address
            peer.uploader = self._tasks.create_task(
                self._serve_uploads(peer), name=f"upload {host}:{port}"
            )

    def _on_other(self, peer: SwarmPeer, event: Event, now: float) -> None:
        conn = peer.session.conn
        if isinstance(event, HaveBitfield | HaveAll | HaveNone):
            if isinstance(event, HaveAll):
                peer.has_all = True
                peer.pieces = Bitfield(self.num_pieces, all_set=True)
            elif isinstance(event, HaveNone):
                peer.pieces = Bitfield(self.num_pieces)
            else:
                peer.pieces = Bitfield.from_bytes(event.bits, self.num_pieces)
                peer.has_all = peer.pieces.all()
            peer.sent_at.clear()
            self.picker.add_peer(peer, None if peer.has_all else peer.pieces)
            if self.complete and peer.has_all:
                peer.session.close("both are seeds")
                return
            self._update_interest(peer)
        elif isinstance(event, Unchoke):
            peer.snubbed = False
        elif isinstance(event, RejectRequest):
            request = Request(event.index, event.begin, event.length)
            peer.sent_at.pop((event.index, event.begin), None)
            self.picker.on_request_failed(peer, request)
        elif isinstance(event, RequestsDropped):
            for request in event.requests:
                peer.sent_at.pop((request.index, request.begin), None)
                self.picker.on_request_failed(peer, request)
        elif isinstance(event, Snubbed):
            peer.snubbed = True
            for request in event.outstanding:
                peer.sent_at.pop((request.index, request.begin), None)
                conn.send(Cancel(request.index, request.begin, request.length))
                self.picker.on_request_failed(peer, request)
            peer.session.schedule_flush()
        elif isinstance(event, Interested):
            if self.choker.config.upload_slots is None or len(self.choker.unchoked) < (
                self.choker.config.upload_slots
            ):
                self._run_choker(now)
        elif isinstance(event, ExtensionHandshakeReceived):
            self.remember_incoming(peer, event.handshake.listen_port)
            self.extensions.on_event(peer, event, now)
        elif isinstance(event, ExtensionMessage):
            self.extensions.on_event(peer, event, now)
        elif isinstance(event, NotInterested | Choke | AllowedFast):
            pass
        elif isinstance(event, HashRequest):
            # Piece layers for peers that joined a v2 torrent by magnet (BEP 52).
            hashes = self.hash_server.answer(event)
            fields = (
                event.pieces_root, event.base_layer, event.index, event.length,
                event.proof_layers,
            )  # fmt: skip
            conn.send(HashReject(*fields) if hashes is None else Hashes(*fields, hashes))
            peer.session.schedule_flush()

    def _on_have(self, peer: SwarmPeer, index: int) -> None:
        if not peer.pieces.set(index):
            return
        self.picker.peer_has(peer, index)
        if peer.pieces.all():
            peer.has_all = True
            if self.complete:
                peer.session.close("both are seeds")
                return
        conn = peer.session.conn
        if (
            not conn.am_interested
            and not self.complete
            and index not in self.storage.have
            and self.picker.priority(index) > 0
        ):
            conn.send(Interested())
            peer.session.schedule_flush()

    def _update_interest(self, peer: SwarmPeer) -> None:
        conn = peer.session.conn
        interesting = not self.complete and self.picker.peer_is_interesting(peer)
        if interesting and not conn.am_interested:
            conn.send(Interested())
            peer.session.schedule_flush()
        elif not interesting and conn.am_interested:
            conn.send(NotInterested())
            peer.session.schedule_flush()

    # ------------------------------------------------------------------ downloading

    def peer_block(
        self,
        session: PeerSession,
        index: int,
        begin: int,
        block: bytes | memoryview,
        requested_at: float | None,
        *,
        now: float,
    ) -> None:
        """A block straight from the connection (the fast path; see ``BlockHandler``)."""
        peer = self.peers.get(session)
        if peer is not None:
            self._take_block(peer, index, begin, block, requested_at, now=now)

    def peer_blocks_done(self, session: PeerSession, now: float) -> None:
        """One read's blocks are in: send the peer more requests."""
        peer = self.peers.get(session)
        if peer is not None and not session.is_closed and session.close_reason is None:
            self._fill(peer, now)

    def _on_block(self, peer: SwarmPeer, piece: Piece, now: float) -> None:
        requested_at = peer.sent_at.pop((piece.index, piece.begin), None)
        self._take_block(peer, piece.index, piece.begin, piece.block, requested_at, now=now)

    def _take_block(
        self,
        peer: SwarmPeer,
        index: int,
        begin: int,
        block: bytes | memoryview,
        requested_at: float | None,
        *,
        now: float,
    ) -> None:
        length = len(block)
        peer.pipeline.on_block(length, now, requested_at)
        peer.downloaded += length
        payload = self.metainfo.block_payload_size(index, begin, length)  # pad bytes left out
        self.downloaded += payload
        self.down_meter.add(payload, now)
        outcome = self.picker.block_received(peer, index, begin, length)
        if not outcome.accepted:
            return
        buffer = self._buffers.get(index)
        if buffer is None:
            size = self.picker.piece_size(index)
            spare = self._spare_buffers
            # Reused piece buffers: a fresh one costs page faults and zeroing per piece.
            buffer = spare.pop() if spare and len(spare[-1]) == size else bytearray(size)
            self._buffers[index] = buffer
        buffer[begin : begin + length] = block
        for other, request in outcome.cancels:
            other_peer: SwarmPeer = other  # type: ignore[assignment]
            other_peer.sent_at.pop((request.index, request.begin), None)
            other_peer.session.send(Cancel(request.index, request.begin, request.length))
        if outcome.piece_complete:
            del self._buffers[index]
            sources = {
                start: source.identity  # type: ignore[attr-defined]
                for start, source in self.picker.block_sources(index).items()
            }
            self._unverified += len(buffer)
            if self._unverified > self.config.max_unverified_bytes and not self._held_off:
                self._hold_off(True)
            self._spawn(self._verify(index, buffer, sources), f"verify {index}")

    def _hold_off(self, paused: bool) -> None:
        self._held_off = paused
        for session in self.peers:
            session.hold_off(paused)

    def _fill(self, peer: SwarmPeer, now: float) -> None:
        """Top the peer's request pipeline up to the depth its rate and latency call for."""
        session = peer.session
        conn = session.conn
        if not peer.open or not conn.am_interested or conn.state is not ConnectionState.OPEN:
            return
        allowed: set[int] | None = None
        if conn.peer_choking:
            if not (conn.fast and conn.allowed_fast_received):
                return
            allowed = conn.allowed_fast_received
        depth = 1 if peer.snubbed else peer.pipeline.depth(now)
        depth = min(depth, conn.max_outstanding_requests)
        want = top_up(depth, conn.outstanding_count)
        if want <= 0:
            return
        if self.provenance.parole and self.provenance.on_parole(peer.identity):
            requests = self._pick_on_parole(peer, want)
        else:
            requests = self.picker.pick_blocks(peer, want, allowed=allowed)
        if not requests:
            return
        # When each was sent is kept by the connection, which hands it back with the block.
        conn.send_request_keys(requests)
        session.schedule_flush()

    def _pick_on_parole(self, peer: SwarmPeer, want: int) -> list[tuple[int, int, int]]:
        """A suspect peer fetches one whole piece alone, so a bad piece names it."""
        current = peer.parole_piece
        if current is not None and current in self.picker.partial_pieces():
            return []  # still busy with its piece
        partial = set(self.picker.partial_pieces())
        have = self.storage.have
        candidates = range(self.num_pieces) if peer.has_all else peer.pieces
        for index in candidates:
            if index in have or index in partial or self.picker.priority(index) <= 0:
                continue
            blocks = self.picker.blocks_in_piece(index)
            requests = self.picker.pick_blocks(peer, max(blocks, want), allowed=[index])
            if requests:
                peer.parole_piece = index
                return requests
        return []

    async def _verify(self, index: int, data: bytearray, sources: dict[int, PeerIdentity]) -> None:
        try:
            ok = await self.storage.write_piece(index, data)
        except StorageError as exc:
            self._fail(exc)
            raise
        finally:
            self._unverified -= len(data)
            if self._held_off and self._unverified <= self.config.max_unverified_bytes // 2:
                self._hold_off(False)
        for waiter in self._piece_waiters.pop(index, ()):
            if not waiter.done():
                waiter.set_result(ok)
        if ok:
            self.picker.on_piece_verified(index)
            if self.picker.priority(index) > 0:
                self.have_bytes += self.metainfo.piece_payload_size(index)
            self._progressed.set()
            self._progressed = asyncio.Event()
            guilty = self.provenance.piece_verified(index, data, sources)
            for peer in self.open_peers:
                if index not in peer.pieces:
                    peer.session.send(Have(index))
            for identity in guilty:
                self._ban(identity, f"sent a corrupt block of piece {index}")
            if not self.complete and self.picker.is_complete():
                self._on_complete()
        else:
            self.hash_failures += 1
            self.picker.on_piece_failed(index)
            for identity in self.provenance.piece_failed(index, data, sources):
                self._ban(identity, f"sent piece {index}, which failed its hash")
        # Verified buffers are kept for the next pieces: the unverified bytes swing
        # between hold-off and nearly none as the pool catches up, and a fresh
        # buffer costs zeroing and page faults.  Spares only replace buffers that
        # were in flight, so memory stays near max_unverified_bytes; freed at the end.
        spare_room = self.config.max_unverified_bytes
        if not self.complete and (len(self._spare_buffers) + 1) * len(data) <= spare_room:
            self._spare_buffers.append(data)  # nothing holds it any more
        now = self.loop.time()
        if not self.complete:
            for peer in self.open_peers:
                self._fill(peer, now)

    def _on_complete(self) -> None:
        log.info("torrent %s complete", self.metainfo.name)
        self._spare_buffers.clear()
        self._complete.set()
        self._settled.set()
        for peer in self.open_peers:
            if peer.has_all:
                peer.session.close("both are seeds")
            elif peer.session.conn.am_interested:
                peer.session.send(NotInterested())
        self._spawn(self.storage.flush(), "flush resume data")
