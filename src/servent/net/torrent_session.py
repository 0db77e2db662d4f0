"""The asyncio shell of one torrent: sockets, tasks and storage around the swarm core.

Every decision (interest, choking, which blocks to request, endgame, what a verified or failed piece
means, bans, completion) is made by the sans-IO :class:`~servent.proto.swarm.SwarmCore` (decision
0024). This shell feeds it what happens (a peer's events, blocks straight from the connection's
framing, the outcome of a piece verification, the periodic tick) with the loop's time, and carries
out its actions (verify and store a piece, close a peer, record a ban, pause reading, complete).
Messages the core writes into a peer's connection cue the session to write by themselves
(``PeerConnection.on_output``): nothing here flushes by hand.

:meth:`TorrentSession.run` is the owner task: a ``TaskGroup`` with every task (dials, uploaders,
verifications) and a periodic tick; connections hand their events over synchronously, on the same
loop: no locks. Parts with their own state: :mod:`~servent.net.torrent_connections`, web seeds,
:mod:`~servent.net.torrent_uploads`, :mod:`~servent.net.piece_checks`, extensions
(:mod:`~servent.net.peer_extensions`), idle peers (:mod:`~servent.net.connection_manager`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine, Iterable
from typing import Any

from servent.codec.metainfo import Metainfo
from servent.errors import ServentError, StorageError
from servent.net.connection_manager import IdlePeerReplacer
from servent.net.encrypted_transport import DEFAULT_ENCRYPTION, parse_policy
from servent.net.known_peers import Address, KnownPeers
from servent.net.limits import GlobalLimits
from servent.net.peer_dialer import PeerDialer
from servent.net.peer_extensions import TorrentExtensions
from servent.net.peer_session import PeerSession
from servent.net.piece_checks import PieceChecks
from servent.net.session_watcher import IGNORE_SESSION, SessionWatcher
from servent.net.swarm_peer import SwarmPeer
from servent.net.torrent_config import TorrentConfig, TorrentStatistics, swarm_statistics
from servent.net.torrent_connections import TorrentConnections
from servent.net.torrent_uploads import TorrentUploads
from servent.net.web_seed import WebSeed, run_web_seeds
from servent.proto.hash_serving import HashServer
from servent.proto.peerwire import (
    Event,
    ExtensionHandshakeReceived,
    ExtensionMessage,
    ExtensionRegistry,
    HandshakeReceived,
    Piece,
)
from servent.proto.picker import PiecePicker
from servent.proto.ratelimit import TokenBucket
from servent.proto.swarm import (
    ClosePeer,
    Completed,
    HoldOff,
    PeerBanned,
    PeerState,
    Reopened,
    SwarmConfig,
    SwarmCore,
    VerifyPiece,
)
from servent.storage import TorrentStorage

__all__ = ["TorrentConfig", "TorrentSession", "TorrentStatistics"]

log = logging.getLogger(__name__)


class TorrentSession:
    """Runs one torrent; see the module docstring."""

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
        watcher: SessionWatcher = IGNORE_SESSION,
    ) -> None:
        self.metainfo, self.watcher = metainfo, watcher
        self.storage = storage
        self.peer_id = peer_id
        self.config = config = config or TorrentConfig()
        self.listen_port = listen_port
        self.loop = asyncio.get_running_loop()
        now = self.loop.time()
        self.limits = limits or GlobalLimits(
            max_connections=None, download_rate=None, upload_rate=None, now=now
        )
        self.num_pieces = metainfo.num_pieces
        self.core = SwarmCore(
            metainfo,
            storage.have,
            wanted=storage.wanted_pieces(),
            priorities=storage.piece_priorities(),
            complete=storage.is_complete(),
            config=SwarmConfig(
                upload_slots=config.upload_slots,
                sequential=config.sequential,
                max_unverified_bytes=config.max_unverified_bytes,
                pipeline=config.pipeline,
            ),
            rng=rng,
            hash_server=HashServer(metainfo.piece_layers, metainfo.piece_length),
            foreign=self._on_foreign,
        )
        self.encryption = parse_policy(config.encryption or DEFAULT_ENCRYPTION)
        self.extension_registry = ExtensionRegistry()  # filled by TorrentExtensions below
        self.peers: dict[PeerSession, SwarmPeer] = {}
        self.known = KnownPeers(
            max_failures=config.max_dial_failures, reconnect_delay=config.reconnect_delay
        )
        self.bans, self.hash_server = self.core.bans, self.core.hash_server
        self.connections = TorrentConnections(
            self, metainfo, config, peer_id=peer_id, listen_port=listen_port, limits=self.limits,
            known=self.known, bans=self.bans, encryption=self.encryption,
            extension_registry=self.extension_registry, loop=self.loop,
        )  # fmt: skip
        self.extensions = TorrentExtensions(  # BEP 27: private torrents' peers: tracker only
            metainfo.info_bytes, pex=not metainfo.private, known=self.known,
            add_peers=lambda found: self.add_peers(found, source="pex"),
            is_own_address=self.connections.is_own_address, registry=self.extension_registry,
            punch=self.connections.punch, nodes=self.connections.node_routes,
            dial_node=self.connections.dial_node, resend_handshake=self._send_extension_handshake,
        )  # fmt: skip
        self.own_addresses = self.connections.own_addresses
        self.info_hash, self.aria2_alias = self.connections.info_hash, self.connections.aria2_alias
        self.replacer = IdlePeerReplacer()
        self.checks = PieceChecks(
            self.core, storage, after=self._carry_out, failed=self._fail, loop=self.loop
        )
        self.download_bucket = TokenBucket(config.download_rate, now)
        self.upload_bucket = TokenBucket(config.upload_rate, now)
        self.uploads = TorrentUploads(
            self.core, metainfo, storage, (self.upload_bucket, self.limits.upload), self.loop
        )
        #: Running web seeds (BEP 19), set by :func:`~servent.net.web_seed.run_web_seeds`.
        self.web_seeds: list[WebSeed] = []
        self._web_seed_task: asyncio.Task[None] | None = None
        self.downloaded_from: dict[str, int] = {}
        self._delivered_by: set[bytes | str] = set()  # closed peers' ``source``
        self.uploaded_to: dict[str, int] = {}
        self.error: BaseException | None = None
        self._complete = asyncio.Event()
        self._done = asyncio.Event()
        self._settled = asyncio.Event()  # complete, or stopped
        self._stop = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._last_tick = now
        if self.core.complete:
            self._complete.set()
            self._settled.set()

    # ------------------------------------------------------------------ parts' state

    @property
    def picker(self) -> PiecePicker:
        return self.core.picker

    @property
    def refused_incoming(self) -> int:
        return self.connections.refused_incoming

    @property
    def evicted(self) -> int:
        return self.connections.evicted

    @property
    def wanted_bytes(self) -> int:
        return self.core.wanted_bytes

    @property
    def have_bytes(self) -> int:
        return self.core.have_bytes

    @property
    def downloaded(self) -> int:
        return self.core.downloaded

    @property
    def uploaded(self) -> int:
        return self.core.uploaded

    @property
    def hash_failures(self) -> int:
        return self.core.hash_failures

    # ------------------------------------------------------------------ API

    @property
    def complete(self) -> bool:
        return self._complete.is_set()

    @property
    def accepting(self) -> bool:
        """Running and not stopping: new connections are welcome."""
        return self._tasks is not None and not self._stop.is_set()

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
        await self.checks.progressed.wait()

    def piece_outcome(self, index: int) -> asyncio.Future[bool]:
        """Resolves with whether piece ``index`` passed its hash, the next time it is checked."""
        return self.checks.outcome(index)

    def deliver_block(self, source: object, piece: Piece, now: float) -> None:
        """A block from a source other than a peer connection (a web seed)."""
        self.core.deliver_block(source, piece, now)
        self._carry_out()

    async def wait_have(self, have_bytes: int) -> None:
        """Until at least ``have_bytes`` of wanted data are verified (or the torrent stopped)."""
        while self.have_bytes < have_bytes and not self._settled.is_set():
            await self.checks.progressed.wait()

    def stop(self) -> None:
        """Ask :meth:`run` to close every connection and return."""
        self._stop.set()

    def set_file_priorities(self, priorities: tuple[int, ...] | list[int]) -> None:
        """Change what is downloaded while the torrent runs (0 = do not download).

        Why here and not by a restart: peers stay connected.  Storage records the
        new priorities; the core follows (picker, interest, requests cancelled,
        wanted/have figures); a torrent that becomes complete (or not) says so.
        """
        if len(priorities) != len(self.metainfo.files):
            raise ValueError("one priority per file (pad files included) is required")
        for index, priority in enumerate(priorities):
            self.storage.set_file_priority(index, max(priority, 0))
        wanted = self.storage.wanted_pieces()
        self.core.set_priorities(self.storage.piece_priorities(), wanted, self.loop.time())
        self._carry_out()

    @property
    def open_peers(self) -> list[SwarmPeer]:
        return [peer for peer in self.peers.values() if peer.open]

    def all_peers_failed(self) -> bool:
        """Nobody connected, nobody being dialled, every known address given up on."""
        return not self.peers and self.known.exhausted()

    def statistics(self) -> TorrentStatistics:
        downloaded_from = dict(self.downloaded_from)
        for seed in self.web_seeds:
            if seed.downloaded:
                downloaded_from[seed.url] = seed.downloaded
        return swarm_statistics(
            self.core, self.peers.values(), self.loop.time(),
            downloaded_from=downloaded_from, uploaded_to=self.uploaded_to,
            complete=self.complete, delivered_by=frozenset(self._delivered_by),
            web_sources=sum(1 for seed in self.web_seeds if seed.downloaded),
        )  # fmt: skip

    # ------------------------------------------------------------------ connections

    def add_peers(self, addresses: Iterable[Address], *, source: str = "manual") -> None:
        """Addresses to dial (given by the user, a tracker, the DHT ...)."""
        self.connections.add_peers(addresses, source=source)

    def accept_incoming(self, session: PeerSession, now: float, *, node_full: bool = False) -> bool:
        """Take over an incoming connection whose handshake named this torrent (see
        :meth:`TorrentConnections.accept_incoming`)."""
        return self.connections.accept_incoming(session, now, node_full=node_full)

    @property
    def dialer(self) -> PeerDialer | None:
        """How dials go out (TCP, uTP, in the engine's order); ``None``: TCP."""
        return self.connections.dialer

    @dialer.setter
    def dialer(self, dialer: PeerDialer | None) -> None:
        self.connections.dialer = dialer

    def _dial_due(self, now: float) -> None:
        self.connections.dial_due(now)

    def register(self, session: PeerSession, *, dialled: Address | None) -> SwarmPeer:
        """A new connection (dialled, or accepted) joins the torrent's peers."""
        peer = SwarmPeer(
            session, self.num_pieces, self.loop.time(), dialled=dialled,
            pipeline=self.config.pipeline,
        )  # fmt: skip
        self.peers[session] = peer
        session.on_read = self._read_blocks
        session.download_buckets = tuple(
            b for b in (self.download_bucket, self.limits.download) if not b.unlimited
        )
        if self.core.assembly.held_off:
            session.hold_off(True)
        return peer

    def start_task(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A child task of the torrent's task group (only while :attr:`accepting`)."""
        tasks = self._tasks
        assert tasks is not None
        return tasks.create_task(coro, name=name)

    def peer_closed(self, session: PeerSession) -> None:
        peer = self.peers.pop(session, None)
        if peer is None:
            return
        self.limits.release()
        now = self.loop.time()
        key = peer.label
        if peer.downloaded:
            self.downloaded_from[key] = self.downloaded_from.get(key, 0) + peer.downloaded
            self._delivered_by.add(peer.source)
        if peer.uploaded:
            self.uploaded_to[key] = self.uploaded_to.get(key, 0) + peer.uploaded
        self.core.peer_closed(peer)
        if peer.uploader is not None:
            peer.uploader.cancel()
        self.extensions.peer_closed(peer)
        self.connections.peer_gone(peer, now)
        log.debug("peer %s closed: %s", peer, session.close_reason)
        if self.accepting:
            self.connections.dial_due(now)
        self._carry_out()

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
            self.checks.progressed.set()
            self.watcher.torrent_stopped(self.error)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            log.error("torrent %s failed: %s", self.metainfo.name, exc)
        self._stop.set()

    def _close_all(self, reason: str) -> None:
        if self._web_seed_task is not None:
            self._web_seed_task.cancel()
        self.connections.cancel_dials()
        for session, peer in list(self.peers.items()):
            if peer.uploader is not None:
                peer.uploader.cancel()
            session.close(reason)

    def _tick(self) -> None:
        now = self.loop.time()
        elapsed = now - self._last_tick
        self._last_tick = now
        self.core.tick(now, elapsed)
        self.connections.dial_due(now)
        self.replacer.tick(self, now, self.connections.room())
        self.extensions.tick(self.open_peers, now)
        self._carry_out()

    # ------------------------------------------------------------------ feeding the core

    def peer_events(self, session: PeerSession, events: list[Event]) -> None:
        peer = self.peers.get(session)
        if peer is not None:
            self.core.peer_events(peer, events, self.loop.time())
            if peer.uploads:
                peer.upload_wakeup.set()
            self._carry_out()

    def _read_blocks(self, session: PeerSession, data: memoryview, now: float) -> int:
        """The blocks a read begins with (the lane), as a ``BlocksReceived`` event would be."""
        peer = self.peers.get(session)
        if peer is None:
            return 0
        taken = self.core.read_blocks(peer, data, now)
        if peer.uploads:
            peer.upload_wakeup.set()
        self._carry_out()
        return taken

    def _on_foreign(self, peer: PeerState, event: Event, now: float) -> None:
        """Events the core leaves to the shell: the handshake and BEP 10 traffic."""
        assert isinstance(peer, SwarmPeer)
        if isinstance(event, HandshakeReceived):
            self._on_open(peer, event, now)
            return
        if isinstance(event, ExtensionHandshakeReceived):
            self.connections.remember_incoming(peer, event.handshake.listen_port)
        elif not isinstance(event, ExtensionMessage):
            return  # nothing to do (keep-alive timeouts, DHT ports ...)
        self.extensions.on_event(peer, event, now)
        _note_closed(peer)

    def _on_open(self, peer: SwarmPeer, event: HandshakeReceived, now: float) -> None:
        session = peer.session
        host, port = session.address
        refusal = self.connections.handshake_done(peer, event.handshake.peer_id)
        if refusal is not None:
            self._close(peer, refusal, abort=refusal == "banned")
            return
        self.core.peer_opened(peer, now)
        if session.conn.extension_protocol:
            self._send_extension_handshake(peer)
        if self._tasks is not None:
            # A child of the torrent's task group; cancelled when the peer closes.
            peer.uploader = self._tasks.create_task(
                self.uploads.serve(peer), name=f"upload {host}:{port}"
            )

    def _send_extension_handshake(self, peer: SwarmPeer) -> None:
        """Our whole BEP 10 handshake (again, when an extension's fields changed)."""
        extra: dict[str, object] = {"v": self.config.client_name}
        if self.listen_port:
            extra["p"] = self.listen_port
        extra.update(self.extensions.handshake_fields(peer.session.address[0]))
        peer.session.conn.send_extension_handshake(extra)
        self.extensions.handshake_sent(peer, self.loop.time())

    # ------------------------------------------------------------------ carrying out actions

    def _carry_out(self) -> None:
        """Do what the core asked, in order (its list may grow meanwhile)."""
        actions = self.core.actions
        while actions:
            batch = actions[:]
            actions.clear()
            for action in batch:
                match action:
                    case VerifyPiece():
                        self.checks.start(action, self._tasks)
                    case ClosePeer(peer=SwarmPeer() as peer):
                        self._close(peer, action.reason, abort=action.abort)
                    case HoldOff(paused=paused):
                        for session in self.peers:
                            session.hold_off(paused)
                    case PeerBanned(identity=identity, reason=reason):
                        log.warning("banning peer %s:%d: %s", *identity[:2], reason)
                        self.watcher.peer_banned(identity[0], identity[1], reason)
                        self.known.remove(identity[:2])  # (absent: nothing to do)
                    case Completed():
                        self._on_complete()
                    case Reopened() if not self._done.is_set():
                        self._complete.clear()
                        self._settled.clear()

    def _close(self, peer: SwarmPeer, reason: str, *, abort: bool = False) -> None:
        if peer.closing is None:
            peer.closing = reason
        if abort:
            peer.session.abort(reason)
        else:
            peer.session.close(reason)

    def _on_complete(self) -> None:
        log.info("torrent %s complete", self.metainfo.name)
        self._complete.set()
        self._settled.set()
        if self._tasks is not None:
            self._tasks.create_task(self.storage.flush(), name="flush resume data")
        self.watcher.torrent_completed()


def _note_closed(peer: SwarmPeer) -> None:
    """The shell closed ``peer`` (an extension refused it): the core stops talking to it."""
    reason = peer.session.close_reason
    if reason is not None and peer.closing is None:
        peer.closing = reason
