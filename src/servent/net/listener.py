"""One listening socket (per address family) shared by every torrent of an engine.

An incoming connection starts with a :class:`PeerConnection` that serves no
torrent yet; the peer's handshake names the info-hash (v1, or the truncated
v2 hash), the listener looks the torrent up and hands the connection over,
or closes it (unknown torrent, connection limit, banned peer).  Connections
that never complete a handshake are closed by the connection's own
handshake timer; at most ``max_pending`` may wait at once.

When the node has networks, a first-bytes sniffer sends connections that
start with the sealed-wire magic to :class:`SealedStream` (``docs/networks.md``
section 8): a network torrent is handed only peers whose sealed handshake
matched it, never a plain or MSE peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from servent.errors import SealedWireRefused
from servent.net.channel_sniffer import FirstBytesSniffer
from servent.net.encrypted_transport import DEFAULT_ENCRYPTION, MseStream, parse_policy
from servent.net.limits import GlobalLimits
from servent.net.peer_session import PeerSession
from servent.net.sealed_stream import HANDSHAKE_TIMEOUT, NetworkTorrents, SealedStream
from servent.proto.mse import EncryptionPolicy
from servent.proto.network.sealed import MAGIC as SEALED_MAGIC
from servent.proto.peerwire import (
    ConnectionConfig,
    ConnectionState,
    Event,
    HandshakeReceived,
    PeerConnection,
)


class ChannelAcceptor(Protocol):
    """Takes incoming connections first to tell node channels apart (``net/node_channel``)."""

    def sniffer(
        self, peer_protocol: Callable[[], asyncio.BaseProtocol]
    ) -> asyncio.BaseProtocol: ...


class IncomingTarget(Protocol):
    """What an incoming peer is handed to: a torrent session, or a magnet's metadata fetch."""

    def accept_incoming(
        self, session: PeerSession, now: float, *, node_full: bool = False
    ) -> bool: ...


__all__ = ["ChannelAcceptor", "IncomingTarget", "PeerListener"]

log = logging.getLogger(__name__)


class _Refuse(asyncio.Protocol):
    """Closes a connection at once (too many handshakes pending)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class PeerListener:
    """Accepts peers on ``host:port`` and dispatches them by info-hash.

    ``host`` ``None`` listens on every IPv4 and IPv6 address, on one port
    number for both families (port 0 picks it).
    """

    def __init__(
        self,
        *,
        peer_id: bytes,
        lookup: Callable[[bytes], IncomingTarget | None],
        limits: GlobalLimits,
        host: str | None = None,
        port: int = 0,
        config: ConnectionConfig | None = None,
        max_pending: int = 64,
        encryption: str = DEFAULT_ENCRYPTION,
        info_hashes: Callable[[], Iterable[bytes]] | None = None,
        share_port: bool = False,
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        """``encryption``: "off" (plain only), "enabled" (plain and MSE on the one
        port) or "required" (MSE only); ``info_hashes`` lists the hashes an MSE
        initiator may ask for (its SKEY); ``share_port``: our own hole-punching
        sockets may bind the listening port (``SO_REUSEPORT``, set after the bind so
        that a second listener on the port still fails); ``sockets``: listening sockets
        reserved beforehand (:mod:`servent.net.port_reservation`), used instead of
        binding ``host:port``, closed with the listener."""
        self.peer_id = peer_id
        self.lookup = lookup
        self.limits = limits
        self.host = host
        self.requested_port = port
        self.config = config or ConnectionConfig()
        self.max_pending = max_pending
        self.encryption = parse_policy(encryption)
        self.info_hashes = info_hashes or (lambda: ())
        self.share_port = share_port
        self._reserved = list(sockets)
        self.port = 0
        self.addresses: list[tuple[str, int]] = []
        self._servers: list[asyncio.Server] = []
        self._pending: set[PeerSession] = set()
        self.refused = 0
        #: Handshakes for a network torrent not over its sealed wire, and sealed
        #: handshakes refused (no current key matched, not a member): closed at once.
        self.not_allowed = 0
        #: Incoming MSE handshakes that failed (no known SKEY, bad crypto, timeout).
        self.mse_failed = 0
        #: When set, node channels are accepted on this port too (told apart by first bytes).
        self.channel_acceptor: ChannelAcceptor | None = None
        #: The node's network torrents (``docs/networks.md`` section 8), when it has networks.
        self.network: NetworkTorrents | None = None
        #: The sealed stream of each incoming session until it is dispatched or closed.
        self._sealed: dict[PeerSession, SealedStream] = {}
        self._sniffers: set[FirstBytesSniffer] = set()

    async def start(self) -> None:
        if self._reserved:
            await self._serve_reserved()
        else:
            await self._bind_and_serve()
        log.info("listening for peers on %s", self.addresses)

    async def _serve_reserved(self) -> None:
        loop = asyncio.get_running_loop()
        reserved, self._reserved = self._reserved, []
        try:
            for sock in reserved:
                self._serving(await loop.create_server(self._protocol, sock=sock, backlog=256))
        except BaseException:
            for sock in reserved:
                sock.close()
            raise

    async def _bind_and_serve(self) -> None:
        loop = asyncio.get_running_loop()
        hosts = ["0.0.0.0", "::"] if self.host is None else [self.host]
        for number, host in enumerate(hosts):
            port = self.port or self.requested_port
            try:
                server = await loop.create_server(
                    self._protocol, host, port, reuse_address=True, backlog=256
                )
            except OSError as exc:
                if number == 0:
                    raise
                log.warning("peers on IPv4 only: cannot listen on [%s]:%d: %s", host, port, exc)
                continue
            self._serving(server)

    def _serving(self, server: asyncio.Server) -> None:
        """Keep a started server; its port is the listener's."""
        self._servers.append(server)
        for sock in server.sockets:
            if self.share_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            address = sock.getsockname()
            self.addresses.append((str(address[0]), int(address[1])))
            self.port = int(address[1])

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for session in list(self._pending):
            session.close("shutting down")
        for sniffer in list(self._sniffers):
            sniffer.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()

    def incoming_protocol(self) -> asyncio.BaseProtocol:
        """The protocol for a peer that connected over uTP (same path as a TCP peer)."""
        return self._protocol()

    def channel_stream_protocol(self) -> asyncio.BaseProtocol:
        """The protocol for a peer on a ``servent/peerwire/1`` stream (``docs/relay.md``):
        the peer-wire path, as for TCP and uTP, without telling node channels apart."""
        return self._peer_protocol()

    def _protocol(self) -> asyncio.BaseProtocol:
        if self.channel_acceptor is not None:
            return self.channel_acceptor.sniffer(self._peer_protocol)
        return self._peer_protocol()

    def _peer_protocol(self) -> asyncio.BaseProtocol:
        """With networks, a sniffer first tells the sealed wire from plain and MSE peers."""
        if self.network is None:
            return self._wire_protocol()
        sniffer = FirstBytesSniffer(
            self._accept_sealed, self._wire_protocol, timeout=HANDSHAKE_TIMEOUT,
            on_done=self._sniffers.discard, magic=SEALED_MAGIC,
        )  # fmt: skip
        self._sniffers.add(sniffer)
        return sniffer

    def _new_session(self) -> PeerSession:
        conn = PeerConnection(
            peer_id=self.peer_id,
            info_hash=None,
            initiator=False,
            config=self.config,
            now=asyncio.get_running_loop().time(),
        )
        session = PeerSession(conn, self)
        self._pending.add(session)
        return session

    def _wire_protocol(self) -> asyncio.BaseProtocol:
        if len(self._pending) >= self.max_pending:
            self.refused += 1
            return _Refuse()
        session = self._new_session()
        if self.encryption is EncryptionPolicy.OFF:
            return session
        stream = MseStream.accepting(session, self._skeys, self.encryption)
        stream.handshake_done.add_done_callback(lambda done: self._mse_over(session, done))
        return stream

    def _accept_sealed(self, transport: asyncio.Transport, first: bytes, _at: float) -> None:
        """A connection that starts with the sealed-wire magic: run its handshake."""
        network = self.network
        if network is None or len(self._pending) >= self.max_pending:
            self.refused += 1
            transport.abort()
            return
        session = self._new_session()
        stream = SealedStream.accepting(session, network)
        self._sealed[session] = stream
        stream.handshake_done.add_done_callback(lambda done: self._sealed_over(session, done))
        transport.set_protocol(stream)
        stream.connection_made(transport)
        stream.data_received(first)

    def _skeys(self) -> list[bytes]:
        """What an MSE initiator may name: public torrents only (never a network one)."""
        network = self.network
        hashes = self.info_hashes()
        if network is None:
            return list(hashes)
        return [h for h in hashes if network.swarm_key(h) is None]

    def _allowed(self, session: PeerSession, info_hash: bytes, torrent: IncomingTarget) -> bool:
        """A network torrent takes only peers whose sealed handshake matched it; a
        sealed connection serves only the torrent it matched; others all."""
        candidates = {info_hash[:20]}
        wire_hash = getattr(torrent, "info_hash", None)
        if isinstance(wire_hash, bytes):
            candidates.add(wire_hash[:20])
        stream = self._sealed.get(session)
        if stream is not None:
            result = stream.result
            return result is not None and result.info_hash in candidates
        network = self.network
        return network is None or all(network.swarm_key(h) is None for h in candidates)

    def _mse_over(self, session: PeerSession, done: asyncio.Future[Any]) -> None:
        """An incoming peer that failed MSE never reaches the session: forget it."""
        if done.cancelled() or done.exception() is not None:
            self.mse_failed += 1
            self._pending.discard(session)

    def _sealed_over(self, session: PeerSession, done: asyncio.Future[Any]) -> None:
        """A refused or broken sealed handshake never reaches the session: forget it."""
        if done.cancelled() or done.exception() is not None:
            if isinstance(done.exception() if not done.cancelled() else None, SealedWireRefused):
                self.not_allowed += 1
            else:
                self.mse_failed += 1
            self._pending.discard(session)
            self._sealed.pop(session, None)

    # PeerHandler ---------------------------------------------------------

    def peer_events(self, session: PeerSession, events: list[Event]) -> None:
        for event in events:
            if (
                isinstance(event, HandshakeReceived)
                and session.conn.state is ConnectionState.AWAIT_ACCEPT
            ):
                self._dispatch(session, event)
                return

    def _dispatch(self, session: PeerSession, event: HandshakeReceived) -> None:
        torrent = self.lookup(event.handshake.info_hash)
        if torrent is None:
            session.close("handshake for an unknown torrent")
            return
        allowed = self._allowed(session, event.handshake.info_hash, torrent)
        self._sealed.pop(session, None)
        if not allowed:
            self.not_allowed += 1
            session.close("not allowed")
            return
        # At the node-wide limit a torrent may still take the peer in place of one of
        # its idle connections (whose close gives the slot back).
        node_full = not self.limits.try_reserve()
        if node_full:
            self.limits.connections += 1
        now = asyncio.get_running_loop().time()
        self._pending.discard(session)
        if not torrent.accept_incoming(session, now, node_full=node_full):
            self.limits.release()
            self._pending.add(session)  # so peer_closed finds it
            session.close("torrent refused the peer")

    def peer_closed(self, session: PeerSession) -> None:
        self._pending.discard(session)
        self._sealed.pop(session, None)
