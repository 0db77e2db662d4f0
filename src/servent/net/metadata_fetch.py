"""Fetch a magnet's info dictionary from peers (BEP 9) over bare peer connections.

Why not inside :class:`~servent.net.torrent_session.TorrentSession`: before
the metadata arrives there is no piece count, no storage and no picker, so a
torrent session has nothing to run.  :class:`MetadataFetch` dials candidate
peers (several at once), speaks just enough of the wire protocol for the
BEP 10 handshake and ``ut_metadata``, and feeds the sans-IO
:class:`~servent.proto.metadata_exchange.MetadataFetcher`, which verifies the
result against the v1 or v2 info-hash.  Peers whose pieces fail the hash, or
that send malformed messages, are dropped and never dialled again.

Candidates arrive through :meth:`MetadataFetch.add_peers` from any source
(the magnet's ``x.pe``, the user, trackers, the DHT, LSD) while it runs.

For a v2-only magnet the info dictionary is not enough to verify pieces of
files longer than one piece: the fetch then also collects those files'
piece layers with BEP 52 hash requests (checked against each file's pieces
root by :class:`~servent.proto.piece_layer_fetch.PieceLayerCollector`, driven
by the mixin in :mod:`servent.net.metadata_layers`) and keeps them in
:attr:`MetadataFetch.piece_layers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable

from servent.codec.magnet import Magnet
from servent.errors import (
    MetadataExchangeError,
    MetadataFetchError,
    MetadataSourcesExhaustedError,
    MseError,
)
from servent.net.encrypted_transport import dial_peer
from servent.net.known_peers import Address
from servent.net.limits import GlobalLimits
from servent.net.metadata_layers import PieceLayerPhase
from servent.net.peer_dialer import PeerDialer
from servent.net.peer_session import PeerSession
from servent.proto.metadata_exchange import MSG_REQUEST, MetadataFetcher, decode_message
from servent.proto.metadata_exchange import encode_reject as encode_metadata_reject
from servent.proto.mse import EncryptionPolicy
from servent.proto.peerwire import (
    ConnectionConfig,
    Event,
    ExtensionHandshakeReceived,
    ExtensionMessage,
    ExtensionRegistry,
    HandshakeReceived,
    Hashes,
    HashReject,
    HaveNone,
    PeerConnection,
)
from servent.proto.piece_layer_fetch import PieceLayerCollector

__all__ = ["MetadataFetch"]

log = logging.getLogger(__name__)

#: Candidate addresses remembered at most (a hostile tracker cannot grow this).
MAX_CANDIDATES = 2000
#: Requests outstanding per peer.
REQUESTS_PER_PEER = 16
#: A peer that has not sent its BEP 10 handshake, or a piece, for this long is dropped.
PEER_IDLE_TIMEOUT = 15.0
TICK = 0.5
#: Fresh starts after a false metadata_size locked honest peers out (bounded).
MAX_SIZE_RESETS = 8


class MetadataFetch(PieceLayerPhase):
    """Dial peers for one magnet until its info dictionary arrives and verifies.

    Use :meth:`add_peers` for candidates and ``await run(timeout)``; it returns
    the verified info dictionary bytes or raises
    :class:`~servent.errors.MetadataFetchError`.
    """

    #: Set by the engine when uTP is on: dials TCP/uTP in the configured order.
    dialer: PeerDialer | None = None

    def __init__(
        self,
        magnet: Magnet,
        *,
        peer_id: bytes,
        config: ConnectionConfig | None = None,
        max_parallel: int = 8,
        connect_timeout: float = 10.0,
        client_name: str = "servent",
        own_addresses: Iterable[Address] = (),
        limits: GlobalLimits | None = None,
        encryption: EncryptionPolicy = EncryptionPolicy.ENABLED,
    ) -> None:
        self.magnet = magnet
        #: Dial policy, as for torrents: peers that require encryption are reachable.
        self.encryption = encryption
        self.peer_id = peer_id
        self.config = config or ConnectionConfig()
        self.max_parallel = max_parallel
        self.connect_timeout = connect_timeout
        self.client_name = client_name
        self.loop = asyncio.get_running_loop()
        self.fetcher = MetadataFetcher(
            info_hash_v1=magnet.info_hash_v1, info_hash_v2=magnet.info_hash_v2
        )
        self.registry = ExtensionRegistry()
        self.registry.register("ut_metadata")
        self._candidates: deque[Address] = deque()
        self._seen: set[Address] = set(own_addresses)
        #: Addresses that answered the wire handshake (worth dialling for the payload).
        self.responsive: list[Address] = []
        #: Addresses dropped for bad metadata or malformed ut_metadata messages.
        self.bad: set[Address] = set()
        self._sessions: dict[PeerSession, Address] = {}
        #: Honest peers refused because a liar announced another size first: retried later.
        self._size_conflicts: list[Address] = []
        self._last_progress: dict[PeerSession, float] = {}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: asyncio.Future[bytes] = self.loop.create_future()
        self.errors: dict[str, int] = {}
        #: The verified info dictionary (before the piece layers, for v2-only magnets).
        self.metadata: bytes | None = None
        #: v2 piece layers (pieces root -> hashes) gathered for a v2-only magnet.
        self.piece_layers: dict[bytes, bytes] = {}
        self._layers: PieceLayerCollector | None = None
        self._finite = False
        #: Peers that dialled us (their address is no dialling target).
        self._incoming: set[PeerSession] = set()
        #: The node-wide connection budget; sessions in _holding have a slot of it.
        self._limits = limits
        self._holding: set[PeerSession] = set()
        #: Peers that offer ut_metadata with a usable size; the one being asked first.
        self._offering: set[PeerSession] = set()
        self._owner: PeerSession | None = None
        self._outstanding: dict[PeerSession, int] = {}
        self._gave_up = False
        self._size_resets = 0

    # ------------------------------------------------------------------ API

    def add_peers(self, addresses: Iterable[Address], *, source: str = "manual") -> None:
        """Candidates to dial (deduplicated, bounded)."""
        added = 0
        for address in addresses:
            if address in self._seen or len(self._seen) >= MAX_CANDIDATES:
                continue
            self._seen.add(address)
            self._candidates.append(address)
            added += 1
        if added:
            log.debug("metadata fetch: %d candidate(s) from %s", added, source)
            self._wake.set()

    async def run(self, within: float | None = None) -> bytes:
        """Dial and fetch until the verified info dictionary is here (or ``within`` s pass)."""
        try:
            async with asyncio.timeout(within), asyncio.TaskGroup() as tasks:
                self._tasks.add(tasks.create_task(self._pump(tasks), name="metadata fetch pump"))
                try:
                    metadata = await asyncio.shield(self._done)
                finally:
                    for task in self._tasks:
                        task.cancel()
        except TimeoutError:
            raise MetadataFetchError(
                f"no metadata for {self.magnet.wire_info_hash.hex()} within {within:g} s "
                f"({self._summary()})"
            ) from None
        finally:
            for session in list(self._sessions):
                session.close("metadata fetch finished")
        if self._gave_up:
            raise MetadataSourcesExhaustedError(
                f"no peer gave the metadata of {self.magnet.wire_info_hash.hex()} "
                f"and no source is left to ask ({self._summary()})"
            )
        return metadata

    def _summary(self) -> str:
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items()))
        return f"{len(self._seen)} peer(s) tried{'; ' + summary if summary else ''}"

    def no_more_sources(self) -> None:
        """Only the candidates already given will ever come: give up once they are tried."""
        self._finite = True
        self._wake.set()

    # ------------------------------------------------------------------ dialling

    async def _pump(self, tasks: asyncio.TaskGroup) -> None:
        while not self._done.done():
            now = self.loop.time()
            while self._candidates and len(self._sessions) < self.max_parallel:
                if self._limits is not None and not self._limits.try_reserve():
                    break  # the node is at its connection limit: try again next tick
                address = self._candidates.popleft()
                session = PeerSession(self._new_connection(now), self)
                self._holding.add(session)
                self._sessions[session] = address
                self._last_progress[session] = now
                dial = tasks.create_task(self._dial(session, address), name=f"dial {address}")
                self._tasks.add(dial)
                dial.add_done_callback(self._tasks.discard)
            self._tick(now)
            self._retry_size_conflicts()
            if self._finite and not self._candidates and not self._sessions:
                self._gave_up = True
                self._done.set_result(b"")
                return
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
            # that comes as the wake does, and the fetch (and its magnet's stop) never ends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICK):
                    await self._wake.wait()

    def _retry_size_conflicts(self) -> None:
        """Peers were refused for a size another peer announced, and no peer offering
        that size is left: start over with a fresh fetcher, so the size is taken anew.

        Without this, a peer that announces a false ``metadata_size`` and then goes
        quiet would lock every honest peer out of the fetch.
        """
        if not self._size_conflicts or self._offering or self._layers is not None:
            return
        if self._size_resets >= MAX_SIZE_RESETS:
            return
        self._size_resets += 1
        log.info(
            "metadata fetch: no peer left with the first metadata_size; asking %d other(s)",
            len(self._size_conflicts),
        )
        self.fetcher = MetadataFetcher(
            info_hash_v1=self.magnet.info_hash_v1, info_hash_v2=self.magnet.info_hash_v2
        )
        self._candidates.extend(a for a in self._size_conflicts if a not in self.bad)
        self._size_conflicts.clear()

    def _new_connection(self, now: float) -> PeerConnection:
        magnet = self.magnet
        hybrid = magnet.info_hash_v1 is not None and magnet.info_hash_v2 is not None
        return PeerConnection(
            peer_id=self.peer_id,
            info_hash=magnet.wire_info_hash,
            info_hash_v2=magnet.info_hash_v2 if hybrid else None,
            initiator=True,
            extensions=self.registry,
            config=self.config,
            now=now,
        )

    async def _dial(self, session: PeerSession, address: Address) -> None:
        host, port = address
        try:
            await (self.dialer.dial if self.dialer is not None else dial_peer)(
                session, host, port,
                info_hash=self.magnet.wire_info_hash,
                policy=self.encryption,
                connect_timeout=self.connect_timeout,
            )  # fmt: skip
        except (OSError, TimeoutError, MseError) as exc:
            log.debug("metadata fetch: dial %s:%d failed: %r", host, port, exc)
            self._count("unreachable")
            self._forget(session)

    def _tick(self, now: float) -> None:
        for session in list(self._sessions):
            if session.transport is None:
                continue  # still dialling (bounded by connect_timeout)
            if now - self._last_progress.get(session, now) > PEER_IDLE_TIMEOUT:
                self._count("idle")
                session.close("no metadata progress")
                continue
            self._request(session, now)

    def accept_incoming(self, session: PeerSession, now: float, *, node_full: bool = False) -> bool:
        """Take a peer that dialled us for this magnet (it found us through a tracker).

        The listener reserved a connection slot; on False it closes the
        session and releases the slot, otherwise the slot is released when
        the session closes.  At the node-wide limit (``node_full``) it is refused.
        """
        if node_full or self._done.done() or len(self._sessions) >= 2 * self.max_parallel:
            return False
        magnet = self.magnet
        hybrid = magnet.info_hash_v1 is not None and magnet.info_hash_v2 is not None
        conn = session.conn
        conn.extensions = self.registry
        conn.accept(
            magnet.wire_info_hash,
            now=now,
            info_hash_v2=magnet.info_hash_v2 if hybrid else None,
        )
        self._sessions[session] = session.address
        self._incoming.add(session)
        self._holding.add(session)  # the listener reserved its slot
        self._last_progress[session] = now
        session.handler = self
        return True

    def _forget(self, session: PeerSession) -> None:
        self._incoming.discard(session)
        if session in self._holding:
            self._holding.discard(session)
            if self._limits is not None:
                self._limits.release()
        self._sessions.pop(session, None)
        self._last_progress.pop(session, None)
        self._offering.discard(session)
        self._outstanding.pop(session, None)
        if self._owner is session:
            self._owner = None
        self.fetcher.remove_peer(session)
        if self._layers is not None:
            self._layers.remove_peer(session)
        self._wake.set()

    def _count(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    # ------------------------------------------------------------------ PeerHandler

    def peer_events(self, session: PeerSession, events: list[Event]) -> None:
        now = self.loop.time()
        for event in events:
            if session.close_reason is not None or self._done.done():
                return
            if isinstance(event, HandshakeReceived):
                self._on_handshake(session)
            elif isinstance(event, ExtensionHandshakeReceived):
                self._on_extension_handshake(session, event, now)
            elif isinstance(event, ExtensionMessage) and event.name == "ut_metadata":
                self._on_metadata(session, event.payload, now)
            elif isinstance(event, Hashes | HashReject):
                self._on_hashes(session, event, now)

    def peer_closed(self, session: PeerSession) -> None:
        self._forget(session)

    def _on_handshake(self, session: PeerSession) -> None:
        conn = session.conn
        address = self._sessions.get(session)
        if address is not None and address not in self.responsive and session not in self._incoming:
            self.responsive.append(address)
        if not conn.extension_protocol:
            self._count("no extension protocol")
            session.close("peer does not speak BEP 10 (no ut_metadata)")
            return
        if conn.fast:
            conn.send(HaveNone())
        conn.send_extension_handshake({"v": self.client_name})  # written by the session

    def _on_extension_handshake(
        self, session: PeerSession, event: ExtensionHandshakeReceived, now: float
    ) -> None:
        if self._layers is not None:
            self._last_progress[session] = now
            self._request(session, now)  # metadata known: only the piece layers are wanted
            return
        if not session.conn.remote_supports("ut_metadata"):
            self._count("no ut_metadata")
            session.close("peer does not offer ut_metadata")
            return
        if not self.fetcher.add_peer(session, event.handshake.metadata_size):
            self._count("unusable metadata_size")
            address = self._sessions.get(session)
            if address is not None and event.handshake.metadata_size is not None:
                self._size_conflicts.append(address)
            session.close(f"unusable metadata_size {event.handshake.metadata_size!r}")
            return
        self._offering.add(session)
        self._last_progress[session] = now
        self._request(session, now)

    def _request(self, session: PeerSession, now: float) -> None:
        if self._layers is not None:
            self._request_hashes(session, now)
            return
        if session not in self._offering:
            return
        # One source at a time while it has requests out: a piece that fails the
        # hash then blames exactly the peer that sent it, never an honest bystander.
        owner = self._owner
        if owner is None or owner not in self._offering:
            owner = self._owner = session
        if session is not owner and self._outstanding.get(owner, 0) > 0:
            return
        sent = 0
        while self._outstanding.get(session, 0) + sent < REQUESTS_PER_PEER:
            payload = self.fetcher.next_request(session, now)
            if payload is None:
                break
            session.conn.send_extension("ut_metadata", payload)
            sent += 1
        if sent:
            self._outstanding[session] = self._outstanding.get(session, 0) + sent

    def _on_metadata(self, session: PeerSession, payload: bytes, now: float) -> None:
        address = self._sessions.get(session, session.address)
        try:
            message = decode_message(payload)
            if message.msg_type == MSG_REQUEST:
                # We have nothing to serve yet: say so (BEP 9 reject).
                session.conn.send_extension("ut_metadata", encode_metadata_reject(message.piece))
                return
            if session in self._outstanding:
                self._outstanding[session] = max(0, self._outstanding[session] - 1)
            metadata = self.fetcher.receive(session, payload, now)
        except MetadataExchangeError as exc:
            log.warning("metadata fetch: dropping %s:%d: %s", *address, exc)
            self.bad.add(address)
            self._count("malformed ut_metadata")
            session.abort(f"malformed ut_metadata: {exc}")
            return
        self._last_progress[session] = now
        if metadata is not None:
            log.info(
                "metadata of %s (%d bytes) verified", self.magnet.wire_info_hash.hex(),
                len(metadata),
            )  # fmt: skip
            self._metadata_verified(metadata, now)
            return
        self._drop_liars()
        if session.close_reason is None:
            self._request(session, now)

    def _drop_liars(self) -> None:
        if not self.fetcher.bad_peers:
            return
        for session, address in list(self._sessions.items()):
            if session in self.fetcher.bad_peers and session.close_reason is None:
                log.warning(
                    "metadata fetch: %s:%d sent metadata that fails the info-hash; dropped",
                    *address,
                )
                self.bad.add(address)
                self._count("bad metadata")
                session.abort("sent metadata that fails the info-hash")
        # Peers refused for another size may have been right after all: dial them again.
        self._candidates.extend(a for a in self._size_conflicts if a not in self.bad)
        self._size_conflicts.clear()
        # Peers still connected may serve the pieces again: ask them now.
        now = self.loop.time()
        for session in list(self._sessions):
            if session.close_reason is None and session.transport is not None:
                self._request(session, now)
